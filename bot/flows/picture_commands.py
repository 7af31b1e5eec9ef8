"""A command and a button for any task on a picture, made once: the checks every one repeats.

    /read, /where (sent as a reply to a photo or picture file)
        -> the models can do it? ("<kind>_off" if not) -> a picture? ("<kind>_usage" if not)
        -> handle(the picture's message, mode=ASKED, asker=whoever sent the command)
    "Read text", "Where things are" (a button under a description)
        -> may this person press it? -> the models can do it? -> the picture still there?
        -> handle(the picture's message under the description, mode=ASKED, asker=the presser)

A new task on a picture is its ``handle`` (what it asks of the models, how its answer reads)
and one :class:`~bot.actions.Action` made with these.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from telegram import Message, Update, User

from ..context import BotContext, message_of, query_of
from ..messages import message, user_language
from .buttons import pressable
from .tasks import Mode

__all__ = ["Handle", "picture_button", "picture_command"]

Callback = Callable[[Update, BotContext], Coroutine[Any, Any, None]]


class Handle(Protocol):
    """Do the task on the picture in ``target`` and answer it."""

    def __call__(
        self, target: Message, context: BotContext, *, mode: Mode, asker: User | None = None
    ) -> Awaitable[Any]: ...


def picture_command(kind: str, handle: Handle, *, off: str, usage: str) -> Callback:
    """The command that does ``kind`` on the picture it replies to, in any /auto mode."""

    async def command(update: Update, context: BotContext) -> None:
        target, ui = message_of(update).reply_to_message, user_language(update.effective_user)
        if not context.services.capabilities.can(kind):
            await message_of(update).reply_text(message(off, ui))
        elif target is None or not (target.photo or target.document):
            await message_of(update).reply_text(message(usage, ui))
        else:
            await handle(target, context, mode=Mode.ASKED, asker=update.effective_user)

    command.__doc__ = f"/{kind}, sent as a reply to a photo or picture file."
    return command


def picture_button(kind: str, handle: Handle, *, off: str) -> Callback:
    """The button under a description that does ``kind`` on the picture described."""

    async def button(update: Update, context: BotContext) -> None:
        query, ui = query_of(update), user_language(update.effective_user)
        reply = await pressable(update, context)
        if reply is None:
            return
        photo = reply.reply_to_message
        if not context.services.capabilities.can(kind):
            await query.answer(message(off, ui), show_alert=True)
        elif photo is None or not (photo.photo or photo.document):
            await query.answer(message("picture_gone", ui), show_alert=True)
        else:
            await query.answer()
            await handle(photo, context, mode=Mode.ASKED, asker=update.effective_user)

    button.__doc__ = f"The {kind!r} button under a description."
    return button
