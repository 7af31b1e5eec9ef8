"""What the handlers reach through ``context.bot_data``: settings, store, describer."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from telegram.ext import ContextTypes

from captioning import Description
from captioning.questions import Question

from .settings import BotSettings
from .store import Store

if TYPE_CHECKING:
    from .albums import Albums

__all__ = ["Describer", "Services", "services"]

KEY = "services"


class Ticket(Protocol):
    """One picture in the describer's queue."""

    def position(self) -> int: ...

    async def result(self) -> Description: ...


class Describer(Protocol):
    """The engine as the bot sees it (captioning.executor.Executor): off the event loop.

    ``submit`` raises ``captioning.Busy`` at once when there is no room; ``lane`` is served
    in turn with other lanes (a chat), ``owner`` is whose quota the picture uses (a person).
    ``detailed`` asks for a longer description; ``question``, for an answer instead.
    """

    @property
    def input_size(self) -> int: ...

    @property
    def ready(self) -> bool: ...

    def submit(
        self,
        picture: bytes,
        *,
        lane: Hashable = None,
        owner: Hashable = None,
        detailed: bool = False,
        question: Question | None = None,
    ) -> Ticket: ...


def _albums() -> Albums:
    from .albums import Albums  # it needs the describing code, which needs this module

    return Albums()


@dataclass
class Services:
    settings: BotSettings
    store: Store
    describer: Describer | None = None  # set in post_init, once the models are loaded
    albums: Albums = field(default_factory=_albums)


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data[KEY]
