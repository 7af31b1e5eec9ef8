"""What every handler reaches: the bot's services, typed, through ``context.services``.

As in python-telegram-bot's ``contexttypesbot.py`` example, :class:`BotContext` is the
``CallbackContext`` the application builds for every update (``ContextTypes(context=...)``),
and ``bot_data`` is a :class:`Services` instead of a dict of string keys. One context serves
all of an update's handlers, so what it reads of the update's chat is read once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from telegram import CallbackQuery, Chat, Message, Update, User
from telegram.ext import Application, CallbackContext, ExtBot

from captioning import Capabilities, EngineSettings, Task

from .chats import default_languages
from .store import ChatSettings

if TYPE_CHECKING:
    from captioning.serving.executor import Executor

    from .actions import Actions
    from .conversations import Conversations
    from .flows.gathering import Albums
    from .permissions import Members
    from .presence import Presence
    from .quota import PersonQuota
    from .settings import BotSettings, Timings
    from .store import Store
    from .updates.journal import Journal

__all__ = ["BotContext", "Describer", "Services", "Ticket", "chat_of", "message_of", "query_of"]


class Ticket(Protocol):
    """One picture in the describer's queue."""

    def position(self) -> int: ...

    async def result(self) -> Any: ...

    async def late(self) -> Any:
        """The result of a task whose ``result()`` timed out while the models were on it."""
        ...


class Describer(Protocol):
    """The engine as the bot sees it (captioning.serving.Executor): off the event loop.

    ``capabilities`` says what it can do (the languages, the task kinds and the size of
    picture each needs). ``submit`` raises ``captioning.Busy`` at once when there is no room,
    before the download (``picture`` may be a coroutine function that fetches the bytes);
    ``lane`` is served in turn with other lanes (a chat), ``owner`` is whose quota the picture
    uses (a person).
    """

    ready: bool

    @property
    def capabilities(self) -> Capabilities: ...

    def submit(
        self,
        picture: bytes | Callable[[], Awaitable[bytes | bytearray]] | None,
        task: Task | None = None,
        *,
        lane: Hashable = None,
        owner: Hashable = None,
        size: int | None = None,
    ) -> Ticket: ...


@dataclass
class Services:
    """The bot's shared state: ``application.bot_data``. Filled in by ``build_application``."""

    settings: BotSettings = None  # type: ignore[assignment]
    engine_settings: EngineSettings | None = None  # the models' settings, for the executor the bot starts
    timings: Timings = None  # type: ignore[assignment]
    store: Store = None  # type: ignore[assignment]
    journal: Journal = None  # type: ignore[assignment]
    albums: Albums = None  # type: ignore[assignment]
    presence: Presence = None  # type: ignore[assignment]
    members: Members = None  # type: ignore[assignment]
    actions: Actions = None  # type: ignore[assignment]
    quota: PersonQuota = None  # type: ignore[assignment]
    describer: Describer | None = None  # set at start-up, once the models are loaded
    owned_executor: Executor | None = None  # the executor the bot started itself, and stops
    requests: list[Any] = field(default_factory=list)  # the Bot API transports, closed on every exit
    # Set when the bot starts to stop: work not yet begun is kept in the journal for the next start.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Called with an error the bot can't recover from by itself: it stops, exit status 1.
    fatal: Callable[[BaseException], None] = lambda error: None
    # The same ask about the same picture, one at a time (bot.flows.tasks), by (chat, picture, task).
    asking: dict[Hashable, asyncio.Lock] = field(default_factory=dict)
    # What was asked about each picture in a private chat lately, for a chat model's follow-ups.
    conversations: Conversations = None  # type: ignore[assignment]
    # Work the bot does beside the updates (results that came late, kept): cancelled at the stop.
    background: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def capabilities(self) -> Capabilities:
        """What the describer can do (nothing but English before it is loaded)."""
        return self.describer.capabilities if self.describer is not None else Capabilities()


class BotContext(CallbackContext[ExtBot, dict, dict, Services]):
    """The context every handler of an update gets."""

    def __init__(
        self, application: Application, chat_id: int | None = None, user_id: int | None = None
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)
        self._chat_settings: dict[int, ChatSettings] = {}
        self.update_id: int | None = None  # the update this context is for: what its answers are named by

    @classmethod
    def from_update(cls, update: object, application: Application) -> BotContext:
        context = super().from_update(update, application)
        context.update_id = update.update_id if isinstance(update, Update) else None
        return context

    @property
    def services(self) -> Services:
        return self.bot_data

    async def chat_settings(self, chat_id: int) -> ChatSettings:
        """The chat's settings, read from the store once per update."""
        if chat_id not in self._chat_settings:
            self._chat_settings[chat_id] = await self.services.store.chat_settings(chat_id)
        return self._chat_settings[chat_id]

    async def change_chat(self, chat_id: int, **changes: Any) -> ChatSettings:
        """Change the chat's settings (``auto``, ``autoread``, ``languages``, ``detailed``) and
        say what they are now."""
        settings = await self.services.store.change_chat(chat_id, **changes)
        self._chat_settings[chat_id] = settings
        return settings

    async def toggle_language(self, chat: Chat, user: User | None, code: str) -> tuple[str, ...]:
        """Add ``code`` to the chat's languages or take it away, at once (see the store); the
        chat's languages now."""
        available = self.services.capabilities.languages
        default = default_languages(chat, user, available)
        languages = await self.services.store.toggle_language(chat.id, code, available, default)
        self._chat_settings.pop(chat.id, None)  # read again if asked
        return languages

    async def languages(self, chat: Chat, user: User | None) -> tuple[str, ...]:
        """The chat's languages, in order, among those the engine can give (see :mod:`bot.chats`)."""
        available = self.services.capabilities.languages
        chosen = (await self.chat_settings(chat.id)).languages
        kept = tuple(lang for lang in chosen or () if lang in available)
        return kept or default_languages(chat, user, available)


# A handler is routed by filters that promise what it reads (a message, its chat, a button
# press); python-telegram-bot's types can't know that, so these say it once, and check it.


def message_of(update: Update) -> Message:
    """The message a message handler was routed for."""
    if update.effective_message is None:
        raise TypeError(f"update {update.update_id} has no message")
    return update.effective_message


def chat_of(update: Update) -> Chat:
    """The chat of an update routed to a handler of chats."""
    if update.effective_chat is None:
        raise TypeError(f"update {update.update_id} has no chat")
    return update.effective_chat


def query_of(update: Update) -> CallbackQuery:
    """The button press a button's handler was routed for."""
    if update.callback_query is None:
        raise TypeError(f"update {update.update_id} is not a button press")
    return update.callback_query
