"""Each update's end: its handlers run, then the journal hears how it went.

python-telegram-bot runs every update through the application's update processor
(:class:`~telegram.ext.BaseUpdateProcessor`), which awaits the update's handlers, error
handler included. :class:`JournalingProcessor` is that processor: it gives each update an
:class:`Outcome`, the error handler (:func:`on_error`) records there what the error means
(:func:`~bot.updates.journal.verdict`), and once the handlers are done the journal carries it
out (:meth:`~bot.updates.journal.Journal.finished`): done, tried again, kept, or set aside.
The outcome travels in a context variable: it belongs to the update's own task, and to no
other update handled at the same time.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from ..store import StoreUnavailable
from .journal import DONE, Journal, Verdict, verdict

if TYPE_CHECKING:
    from ..context import BotContext

__all__ = ["JournalingProcessor", "Outcome", "count_sent", "on_error", "sent_so_far"]

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of one update, as its handlers left it."""

    verdict: Verdict = DONE
    sent: int = 0  # messages (and files, by size) the update's handlers sent


def count_sent(units: int = 1) -> None:
    """The update being handled sent ``units`` messages' worth (see :mod:`bot.sending`)."""
    current = _OUTCOME.get(None)
    if current is not None:
        current.sent += units


def sent_so_far() -> int:
    """What the update being handled has sent so far, in messages' worth."""
    current = _OUTCOME.get(None)
    return current.sent if current is not None else 0


_OUTCOME: contextvars.ContextVar[Outcome] = contextvars.ContextVar("outcome")


class JournalingProcessor(BaseUpdateProcessor):
    """Up to ``max_concurrent_updates`` updates at once, each finished in the journal."""

    def __init__(self, journal: Journal, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
        self.journal = journal
        # Called with a database that stayed unusable while an update was finished: the bot stops.
        self.on_fatal: Callable[[BaseException], None] = lambda error: None

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        outcome = Outcome()
        token = _OUTCOME.set(outcome)
        try:
            await coroutine
        finally:
            _OUTCOME.reset(token)
        if not isinstance(update, Update):
            return
        try:
            await self.journal.finished(update, outcome.verdict)
        except StoreUnavailable as exc:  # the bot stops; the update waits for the next start
            self.on_fatal(exc)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass


async def on_error(update: object, context: BotContext) -> None:
    """The one place errors are logged: ids and the error, never Bot or File objects. What
    the error means for the update is recorded for the processor to finish it by."""
    error = context.error
    if error is None:
        return
    if isinstance(error, StoreUnavailable):  # the bot stops; the update waits for the next start
        context.services.fatal(error)
    if not isinstance(update, Update):
        return
    outcome = verdict(update.update_id, error)
    current = _OUTCOME.get(None)
    if current is not None:
        current.verdict = outcome
    if outcome.kind == "aside":
        log.error("update %s: unexpected error", update.update_id, exc_info=error)
