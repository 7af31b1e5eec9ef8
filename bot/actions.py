"""Every action a person can take, in one table: its command (named in each interface
language), its button (routed by a strict pattern, labelled from the catalogs), where its
button goes, and what the models must be able to do for it.

The application's handlers, the buttons under each reply, and the command menus in every
language are made from :data:`ACTIONS`: a new action is one entry here, and a catalog that
names a command in its own language (``COMMANDS = {"read": "leer"}``) makes ``/leer`` work.
Callback data comes from the client and can be forged, so it names an action and nothing
else; who may press is the store's to say (:func:`bot.flows.buttons.pressable`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, filters

from captioning import Capabilities

from .context import BotContext
from .flows import buttons, commands, describing, locating, reading, translating
from .flows.picture_commands import Handle, picture_button, picture_command
from .messages import CATALOG, COMMAND_NAMES
from .quota import limited
from .replies import label

__all__ = ["ACTIONS", "NEW", "Action", "Actions", "StrictButton"]

Callback = Callable[[Update, BotContext], Coroutine[Any, Any, None]]

# New messages and channel posts: an edited message is not a new command, and answering it
# again would be noise.
NEW = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST


@dataclass(frozen=True)
class Action:
    """One thing a person can do: ``/name`` and/or a button whose data is ``name``."""

    name: str
    command: Callback | None = None
    aliases: tuple[str, ...] = ()  # more names of the command (/start for /help)
    button: Callback | None = None
    # The button's data, strictly. Buttons sent before the data named only the action
    # carried ":<id>": it is ignored. Default: the name alone.
    pattern: str | None = None
    under: tuple[str, ...] = ()  # the replies its button goes under: "description", "text", ...
    needs: str | None = None  # the task kind the models must do for it to be offered

    def offered(self, capabilities: Capabilities) -> bool:
        return self.needs is None or capabilities.can(self.needs)

    def command_names(self) -> list[str]:
        """Its command's names: its own, its aliases, and each catalog's name for it."""
        named = (names.get(self.name) for names in COMMAND_NAMES.values())
        return list(dict.fromkeys([self.name, *self.aliases, *filter(None, named)]))


class StrictButton(CallbackQueryHandler[BotContext, None]):
    """A press routed by its data, strictly. python-telegram-bot lets a press without data
    (or with empty data) through any pattern; here it matches no action."""

    def check_update(self, update: object) -> bool | object | None:
        query = update.callback_query if isinstance(update, Update) else None
        if query is None or not isinstance(query.data, str) or not query.data:
            return None
        return super().check_update(update)


class Actions:
    """The table, and what is made from it."""

    def __init__(self, actions: Sequence[Action]) -> None:
        self.actions = tuple(actions)

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def handlers(self) -> list[BaseHandler]:
        """A CommandHandler per command, a StrictButton per button."""
        made: list[BaseHandler] = []
        for action in self.actions:
            # Whatever a person asks counts against what they may make the bot say (bot.quota).
            if action.command is not None:
                made.append(CommandHandler(action.command_names(), limited(action.command), filters=NEW))
            if action.button is not None:
                made.append(
                    StrictButton(limited(action.button), pattern=action.pattern or f"^{action.name}$")
                )
        return made

    def buttons(
        self,
        under: str,
        languages: Sequence[str],
        capabilities: Capabilities,
        *,
        leave_out: Collection[str] = (),
    ) -> InlineKeyboardMarkup:
        """The row of buttons under a reply of kind ``under``, labelled in ``languages``."""
        row = [
            InlineKeyboardButton(label(f"button_{a.name}", languages), callback_data=a.name)
            for a in self.actions
            if under in a.under and a.offered(capabilities) and a.name not in leave_out
        ]
        return InlineKeyboardMarkup([row])

    def menu(self, language: str, capabilities: Capabilities) -> list[BotCommand]:
        """The command menu in ``language``: each command offered, by its name there."""
        names, catalog = COMMAND_NAMES.get(language, {}), CATALOG[language]
        return [
            BotCommand(names.get(a.name, a.name), catalog[f"command.{a.name}"])
            for a in self.actions
            if a.command is not None and a.offered(capabilities)
        ]


ANSWERS = ("description", "text", "no_text", "answer", "album")


def picture_action(name: str, handle: Handle, *, off: str | None = None) -> Action:
    """A task on a picture (its kind is ``name``): ``/name`` in reply to a picture, and a button
    under its description, offered where the models do it. Texts: ``<name>_usage``, and
    ``off`` (default ``<name>_off``) for models that don't."""
    off = off or f"{name}_off"
    return Action(
        name,
        command=picture_command(name, handle, off=off, usage=f"{name}_usage"),
        button=picture_button(name, handle, off=off),
        under=("description",),
        needs=name,
    )


ACTIONS = Actions(
    [
        Action("describe", command=describing.describe_command),
        Action(
            "again",
            button=describing.on_again,
            pattern=r"^again(:\d{1,20})?$",
            under=("description",),
            needs="describe_detailed",
        ),
        picture_action("read", reading.read_message, off="reading_off"),
        picture_action("where", locating.where_message),
        Action("translate", button=translating.on_translate, under=("text",)),
        Action("auto", command=commands.auto_command),
        Action("autoread", command=commands.autoread_command, needs="read"),
        Action("detail", command=commands.detail_command, needs="describe_detailed"),
        Action("lang", command=commands.lang_command, button=buttons.on_lang, pattern=r"^lang:[a-z]{2}$"),
        Action("forget", command=commands.forget_command),
        Action("help", command=commands.help_command, aliases=("start",)),
        Action("delete", button=buttons.on_delete, pattern=r"^delete(:\d{1,20})?$", under=ANSWERS),
    ]
)
