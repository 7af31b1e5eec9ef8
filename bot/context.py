"""What every handler reaches: the bot's services, typed, through ``context.services``.

As in python-telegram-bot's ``contexttypesbot.py`` example, :class:`BotContext` is the
``CallbackContext`` the application builds for every handler (``ContextTypes(context=...)``),
and ``bot_data`` is a :class:`Services` instead of a dict of string keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from telegram.ext import Application, CallbackContext, ExtBot

from captioning import Task

if TYPE_CHECKING:
    from .gathering import Albums
    from .journal import Journal
    from .permissions import Members
    from .presence import Presence
    from .settings import BotSettings, Timings
    from .store import Store

__all__ = ["BotContext", "Describer", "Services", "Ticket"]


class Ticket(Protocol):
    """One picture in the describer's queue."""

    def position(self) -> int: ...

    async def result(self) -> Any: ...


class Describer(Protocol):
    """The engine as the bot sees it (captioning.executor.Executor): off the event loop.

    ``submit`` raises ``captioning.Busy`` at once when there is no room, before the download
    (``picture`` may be a coroutine function that fetches the bytes); ``lane`` is served in
    turn with other lanes (a chat), ``owner`` is whose quota the picture uses (a person).
    """

    ready: bool

    @property
    def input_size(self) -> int: ...

    @property
    def languages(self) -> tuple[str, ...]: ...

    @property
    def question_languages(self) -> tuple[str, ...]: ...

    def submit(
        self,
        picture: bytes | Callable[[], Awaitable[bytes]],
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
    timings: Timings = None  # type: ignore[assignment]
    store: Store = None  # type: ignore[assignment]
    journal: Journal = None  # type: ignore[assignment]
    albums: Albums = None  # type: ignore[assignment]
    presence: Presence = None  # type: ignore[assignment]
    members: Members = None  # type: ignore[assignment]
    describer: Describer | None = None  # set at start-up, once the models are loaded
    owned_executor: Any = None  # the executor the bot started itself, and stops
    requests: list[Any] = field(default_factory=list)  # the Bot API transports, closed on every exit
    # Set when the bot starts to stop: work not yet begun is kept in the journal for the next start.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    # Called with an error the bot can't recover from by itself: it stops, exit status 1.
    fatal: Callable[[BaseException], None] = lambda error: None


class BotContext(CallbackContext[ExtBot, dict, dict, Services]):
    """The context every handler gets."""

    def __init__(
        self, application: Application, chat_id: int | None = None, user_id: int | None = None
    ) -> None:
        super().__init__(application=application, chat_id=chat_id, user_id=user_id)

    @property
    def services(self) -> Services:
        return self.bot_data
