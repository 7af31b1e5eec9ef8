"""No photo lost: every update is journaled before Telegram hears it arrived, and kept until
it is answered; and none is handled twice.

    Telegram -> intake -> Journal.received: written down (new, pending or done?), then parsed
    -> the application's queue -> handlers -> the update processor -> Journal.finished:
    done, tried again later, kept for the next start, or set aside

* **What is kept** of an update: :func:`~bot.updates.minimal.minimal`.
* **At most once.** Telegram hands an update out again until a later getUpdates confirms it,
  and posts a webhook update again when the 200 was late: the journal's insert says whether
  an id is new, and an id is handled at most once per process, and never once it is done.
* **Replay.** On start, :meth:`Journal.replay` queues the unfinished updates, each on its
  own: one that can't be read back is set aside with one log line (its id and why), and the
  start goes on.
* **What becomes of an update** is :func:`verdict`'s to say from the error its handlers met
  (none: done), and :meth:`Journal.finished`'s to carry out. A reply Telegram didn't take
  (5xx, a 429 past the rate limiter's retries, the network) keeps the update pending and
  queues it again after 10 s, 1 min, 5 min, then every 30 min (:class:`~bot.settings.Timings`),
  until it goes through or fails for good (the chat is gone, the bot was blocked, the file was
  deleted: logged once). A group photo that met a full queue or timed out is tried again the
  same way, within 10 minutes of being sent.
* An update whose handlers met a database that stayed unusable is never marked done: the bot
  stops for it (exit status 1), and the next start replays the update.
* A crash between a reply and its mark gives one duplicate reply, never a lost one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from telegram import Bot, Update
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from captioning import Stopped

from ..settings import Timings
from ..store import Store, StoreUnavailable
from .minimal import minimal

__all__ = ["DONE", "Deferred", "Journal", "Verdict", "verdict"]

log = logging.getLogger(__name__)


class Deferred(Exception):
    """Raised by a handler whose work can't be done now (a full queue, a timeout, a stopping
    bot) and should be tried again later, without a word to anyone meanwhile."""

    def __init__(self, reason: str, *, give_up_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.give_up_after_s = reason, give_up_after_s


@dataclass(frozen=True)
class Verdict:
    """What becomes of an update once its handlers are done.

    ``done``: never again. ``aside``: done, and why kept (``detail``). ``keep``: pending, for
    the next start. ``telegram``: tried again in this process on Telegram's schedule.
    ``busy``: tried again on the busy schedule, given up ``detail`` seconds after it was sent.
    """

    kind: str
    detail: Any = None

    @property
    def retried(self) -> bool:
        return self.kind in ("telegram", "busy")


DONE = Verdict("done")


def verdict(update_id: int, error: BaseException) -> Verdict:
    """What becomes of an update whose handlers met ``error``; said in the log where it matters."""
    if isinstance(error, Deferred):
        return Verdict("busy", error.give_up_after_s)
    if isinstance(error, Stopped):  # the bot is stopping: the next start does it
        return Verdict("busy")
    if isinstance(error, StoreUnavailable):
        # The bot is stopping for it; the database may be back by the time the update is
        # marked, and nothing unanswered may be marked done: it waits for the next start.
        return Verdict("keep")
    if isinstance(error, ChatMigrated):
        log.info("update %s: the group became a supergroup (%s); not answered", update_id, error.new_chat_id)
        return DONE
    if isinstance(error, Forbidden):  # blocked by the user, or removed from the group
        log.info("update %s: not allowed to reply (%s); giving up", update_id, error)
        return DONE
    if isinstance(error, BadRequest):  # the chat or message is gone: trying again won't help
        log.warning("update %s: Telegram refused the reply (%s); giving up", update_id, error)
        return DONE
    if isinstance(error, (NetworkError, TimedOut, RetryAfter)):
        log.warning(
            "update %s: Telegram didn't take the reply (%s: %s)", update_id, type(error).__name__, error
        )
        return Verdict("telegram")
    return Verdict("aside", f"{type(error).__name__}: {error}")


class Journal:
    """Writes updates down, replays them, and decides what becomes of each one handled."""

    def __init__(self, store: Store, timings: Timings) -> None:
        self.store, self.timings = store, timings
        self.queue: asyncio.Queue[object] | None = None
        self.bot: Bot | None = None
        self._attempts: dict[int, int] = {}
        # Updates handed to the handlers by this process and not yet done: one delivered again
        # meanwhile (Telegram's, or the journal's replay) is not handled a second time.
        self._dispatched: set[int] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._stopping = False

    def attach(self, queue: asyncio.Queue[object], bot: Bot) -> None:
        self.queue, self.bot = queue, bot

    def _queue(self) -> asyncio.Queue[object]:
        if self.queue is None:
            raise RuntimeError("Journal.attach() has not been called")
        return self.queue

    async def received(self, raw: dict[str, Any]) -> Update | None:
        """Write ``raw`` (an update as Telegram sent it) down, then parse it: the update to
        handle, or None when there is nothing to handle. Raises StoreUnavailable if it can't
        be written: then Telegram must not hear it arrived.

        An update is handled at most once per process, and never once it is done: Telegram
        hands it out again until a later getUpdates confirms it (a crash, or a lost confirm,
        comes between), and posts a webhook update again when the 200 was late."""
        update_id = raw["update_id"]
        state = await self.store.journal_received(update_id, minimal(raw))
        if state == "done" or update_id in self._dispatched:
            log.info("update %s: delivered again (%s); already handled", update_id, state)
            return None
        return await self._dispatch(update_id, raw)

    async def _dispatch(self, update_id: int, data: dict[str, Any]) -> Update | None:
        update = await self._parse(update_id, data)
        if update is not None:
            self._dispatched.add(update_id)
        return update

    async def replay(self) -> int:
        """Queue every journaled update that never finished, each on its own; how many."""
        pending = await self.store.journal_pending()
        queued = 0
        for update_id, body in pending:
            try:
                data = json.loads(body)
            except ValueError as exc:
                await self._set_aside(update_id, f"its journal entry is not JSON ({exc})")
                continue
            if update_id in self._dispatched:
                continue
            update = await self._dispatch(update_id, data)
            if update is not None:
                await self._queue().put(update)
                queued += 1
        if pending:
            log.info("Replaying %d unfinished update(s) from the journal", queued)
        return queued

    async def _parse(self, update_id: int, data: dict[str, Any]) -> Update | None:
        try:
            return Update.de_json(data, self.bot)
        except Exception as exc:  # a shape python-telegram-bot can't read: never block the rest
            await self._set_aside(update_id, f"it can't be read ({type(exc).__name__}: {exc})")
            return None

    async def _set_aside(self, update_id: int, why: str) -> None:
        log.warning("Update %s set aside: %s", update_id, why)
        await self.store.journal_done(update_id, set_aside=why[:500])

    async def finished(self, update: Update, outcome: Verdict = DONE) -> None:
        """The update's handlers have all run: carry out ``outcome``."""
        update_id = update.update_id
        if outcome.retried:
            await self._schedule(update, outcome.kind, outcome.detail)
            return
        self._attempts.pop(update_id, None)
        if outcome.kind == "keep":
            return  # pending, for the next start to replay
        if outcome.kind == "aside":
            await self._set_aside(update_id, f"handling it failed ({outcome.detail})")
        else:
            await self.store.journal_done(update_id)
        self._dispatched.discard(update_id)  # the journal says "done" from now on

    async def _schedule(self, update: Update, kind: str, give_up_after_s: float | None) -> None:
        if self._stopping:
            return  # it stays pending, for the next start
        update_id = update.update_id
        attempt = self._attempts.get(update_id, 0)
        delays = self.timings.busy_retry_delays_s if kind == "busy" else self.timings.retry_delays_s
        delay = delays[min(attempt, len(delays) - 1)]
        message = update.effective_message
        sent_at = message.date.timestamp() if message is not None and message.date is not None else None
        if (
            give_up_after_s is not None
            and sent_at is not None
            and time.time() + delay - sent_at > give_up_after_s
        ):
            log.info("update %s: no room to answer it within %.0f s; giving up", update_id, give_up_after_s)
            self._attempts.pop(update_id, None)
            await self.store.journal_done(update_id)
            self._dispatched.discard(update_id)
            return
        self._attempts[update_id] = attempt + 1
        log.info("update %s: trying again in %.0f s (%s)", update_id, delay, kind)
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle
        timer = loop.call_later(delay, lambda: self._requeue(update, timer))
        self._timers.add(timer)

    def _requeue(self, update: Update, timer: asyncio.TimerHandle) -> None:
        self._timers.discard(timer)
        if not self._stopping and self.queue is not None:
            self.queue.put_nowait(update)

    @property
    def retrying(self) -> list[int]:
        """The updates waiting to be tried again, by id."""
        return list(self._attempts)

    def stop(self) -> None:
        """No more retries in this process: what is pending is replayed at the next start."""
        self._stopping = True
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
