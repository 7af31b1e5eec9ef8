"""No photo lost: every update is journaled before Telegram hears it arrived, and kept until
it is answered.

    Telegram -> intake (bot.intake) -> Journal.received: written down, then parsed -> queue
    -> handlers -> mark_done (the last handler group): done, retried later, or set aside

* **What is kept.** :func:`minimal` keeps what answering an update needs (ids, the chat and
  its type, the sender's id and language, text, captions, file ids, the message replied to)
  and drops everything else: names, usernames, phone numbers, places, file names, forward
  origins, signatures, polls. Required fields keep a value, so the update still parses.
* **Replay.** On start, :meth:`Journal.replay` queues the unfinished updates, each on its
  own: one that can't be read back is set aside with one log line (its id and why), and the
  start goes on.
* **Retries in the running bot.** A reply Telegram didn't take (5xx, a 429 past the rate
  limiter's retries, the network) keeps the update pending and queues it again after
  10 s, 1 min, 5 min, then every 30 min (:class:`~bot.settings.Timings`), until it goes
  through or fails for good (the chat is gone, the bot was blocked, the file was deleted:
  logged once). A group photo that met a full queue or timed out is tried again the same
  way, within 10 minutes of being sent.
* An update whose handlers met a database that stayed unusable is never marked done: the bot
  stops for it (exit status 1), and the next start replays the update.
* A crash between a reply and its mark gives one duplicate reply, never a lost one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from telegram import Bot, Update
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from captioning import Stopped

from .settings import Timings
from .store import Store, StoreUnavailable

__all__ = ["LAST_GROUP", "Deferred", "Journal", "minimal"]

log = logging.getLogger(__name__)

LAST_GROUP = 1_000_000


class Deferred(Exception):
    """Raised by a handler whose work can't be done now (a full queue, a timeout, a stopping
    bot) and should be tried again later, without a word to anyone meanwhile."""

    def __init__(self, reason: str, *, give_up_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.give_up_after_s = reason, give_up_after_s


# -- what is kept of an update --------------------------------------------------------------

_PHOTO_SIZE = ("file_id", "file_unique_id", "width", "height", "file_size")
_MEDIA = {
    # Kept whole where the bot reads them (file ids and sizes); their required fields only
    # where their presence alone matters (which "not yet" to say).
    "document": ("file_id", "file_unique_id", "file_size", "mime_type"),
    "sticker": ("file_id", "file_unique_id", "width", "height", "is_animated", "is_video", "type"),
    "animation": ("file_id", "file_unique_id", "width", "height", "duration"),
    "video": ("file_id", "file_unique_id", "width", "height", "duration"),
    "video_note": ("file_id", "file_unique_id", "length", "duration"),
}
_MESSAGE_FIELDS = (
    "message_id",
    "date",
    "message_thread_id",
    "is_topic_message",
    "is_automatic_forward",
    "media_group_id",
    "text",
    "caption",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
)


def minimal(update: dict[str, Any]) -> dict[str, Any]:
    """What a replay of ``update`` needs, and nothing else (see the module's docstring)."""
    kept: dict[str, Any] = {"update_id": update["update_id"]}
    for kind in ("message", "channel_post"):
        if isinstance(update.get(kind), dict):
            kept[kind] = _message(update[kind], depth=1)
    query = update.get("callback_query")
    if isinstance(query, dict):
        kept["callback_query"] = {
            "id": query.get("id", ""),
            "from": _user(query.get("from") or {}),
            "chat_instance": query.get("chat_instance", ""),
            **{k: query[k] for k in ("data", "inline_message_id") if k in query},
        }
        if isinstance(query.get("message"), dict):
            kept["callback_query"]["message"] = _message(query["message"], depth=1)
    return kept


def _message(message: dict[str, Any], depth: int) -> dict[str, Any]:
    kept = {k: message[k] for k in _MESSAGE_FIELDS if k in message}
    kept.setdefault("date", 0)
    kept.setdefault("message_id", 0)
    kept["chat"] = _chat(message.get("chat") or {})
    if isinstance(message.get("from"), dict):
        kept["from"] = _user(message["from"])
    if isinstance(message.get("sender_chat"), dict):
        kept["sender_chat"] = _chat(message["sender_chat"])
    for key in ("entities", "caption_entities"):
        if isinstance(message.get(key), list):
            kept[key] = [{k: e[k] for k in ("type", "offset", "length") if k in e} for e in message[key]]
    if isinstance(message.get("photo"), list):
        kept["photo"] = [{k: size[k] for k in _PHOTO_SIZE if k in size} for size in message["photo"]]
    for kind, fields in _MEDIA.items():
        if isinstance(message.get(kind), dict):
            kept[kind] = {k: message[kind][k] for k in fields if k in message[kind]}
    if depth > 0 and isinstance(message.get("reply_to_message"), dict):
        kept["reply_to_message"] = _message(message["reply_to_message"], depth - 1)
    return kept


def _user(user: dict[str, Any]) -> dict[str, Any]:
    kept = {"id": user.get("id", 0), "is_bot": bool(user.get("is_bot")), "first_name": ""}
    if "language_code" in user:
        kept["language_code"] = user["language_code"]
    return kept


def _chat(chat: dict[str, Any]) -> dict[str, Any]:
    return {"id": chat.get("id", 0), "type": chat.get("type", "private")}


# -- the journal at work --------------------------------------------------------------------


class Journal:
    """Writes updates down, replays them, and decides what becomes of each one handled."""

    def __init__(self, store: Store, timings: Timings) -> None:
        self.store, self.timings = store, timings
        self.queue: asyncio.Queue[object] | None = None
        self.bot: Bot | None = None
        self._verdicts: dict[int, tuple[str, Any]] = {}
        self._attempts: dict[int, int] = {}
        # Updates handed to the handlers by this process and not yet done: one delivered again
        # meanwhile (Telegram's, or the journal's replay) is not handled a second time.
        self._dispatched: set[int] = set()
        self._timers: set[asyncio.TimerHandle] = set()
        self._stopping = False

    def attach(self, queue: asyncio.Queue[object], bot: Bot) -> None:
        self.queue, self.bot = queue, bot

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
                await self.queue.put(update)
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

    # -- verdicts, from the error handler -------------------------------------------------

    def verdict(self, update: object, error: BaseException) -> str:
        """What becomes of ``update`` after ``error``: "retry", "done" or "aside"; logged."""
        if not isinstance(update, Update):
            return "done"
        update_id = update.update_id
        if isinstance(error, Deferred):
            self._verdicts[update_id] = ("busy", error.give_up_after_s)
            return "retry"
        if isinstance(error, Stopped):  # the bot is stopping: the next start does it
            self._verdicts[update_id] = ("busy", None)
            return "retry"
        if isinstance(error, StoreUnavailable):
            # The bot is stopping for it; the database may be back by the time the update is
            # marked, and nothing unanswered may be marked done: it waits for the next start.
            self._verdicts[update_id] = ("keep", None)
            return "retry"
        if isinstance(error, ChatMigrated):
            log.info(
                "update %s: the group became a supergroup (%s); not answered", update_id, error.new_chat_id
            )
            return "done"
        if isinstance(error, Forbidden):  # blocked by the user, or removed from the group
            log.info("update %s: not allowed to reply (%s); giving up", update_id, error)
            return "done"
        if isinstance(error, BadRequest):  # the chat or message is gone: trying again won't help
            log.warning("update %s: Telegram refused the reply (%s); giving up", update_id, error)
            return "done"
        if isinstance(error, (NetworkError, TimedOut, RetryAfter)):
            log.warning(
                "update %s: Telegram didn't take the reply (%s: %s)", update_id, type(error).__name__, error
            )
            self._verdicts[update_id] = ("telegram", None)
            return "retry"
        self._verdicts[update_id] = ("aside", f"{type(error).__name__}: {error}")
        return "aside"

    async def finished(self, update: Update) -> None:
        """The update's handlers have all run: mark it done, or schedule it again."""
        update_id = update.update_id
        kind, detail = self._verdicts.pop(update_id, ("done", None))
        if kind == "done":
            self._attempts.pop(update_id, None)
            await self.store.journal_done(update_id)
            self._dispatched.discard(update_id)  # the journal says "done" from now on
        elif kind == "aside":
            self._attempts.pop(update_id, None)
            await self._set_aside(update_id, f"handling it failed ({detail})")
            self._dispatched.discard(update_id)
        elif kind == "keep":
            self._attempts.pop(update_id, None)  # pending, for the next start to replay
        else:
            await self._schedule(update, kind, detail)

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
