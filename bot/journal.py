"""No photo lost: every update is journaled before Telegram hears it arrived.

python-telegram-bot's updater puts each fetched update into the application's update queue,
and only then asks getUpdates with a higher offset, which tells Telegram the earlier ones
arrived. :class:`JournalingQueue` is that update queue, writing each update to SQLite in
``put``, so the journal always holds an update before Telegram forgets it. (The webhook
server puts updates into the same queue before it answers Telegram's POST, so webhooks are
covered too.)

An update is marked done by :func:`mark_done`, a handler in the last group, which runs
after the update's own handler has replied. On start, :func:`replay_pending` puts the
unfinished ones back into the queue. A crash between a reply and its mark gives one
duplicate reply per update in flight, never a lost one.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Update
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application, ContextTypes

from .store import Store

__all__ = ["LAST_GROUP", "JournalingQueue", "keep_pending", "mark_done", "replay_pending"]

log = logging.getLogger(__name__)

LAST_GROUP = 1_000_000
_KEEP = "journal_keep"


class JournalingQueue(asyncio.Queue):
    """The application's update queue; writes each update down on its way in."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    async def put(self, item: object) -> None:
        if isinstance(item, Update):
            self.store.journal_received(item.update_id, item.to_dict())
        await super().put(item)


async def mark_done(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Last in line for every update: its handler has finished, so it needs no replay."""
    keep = context.bot_data.setdefault(_KEEP, set())
    if update.update_id in keep:  # the reply could not be sent: replay it at the next start
        keep.discard(update.update_id)
        return
    context.bot_data["services"].store.journal_done(update.update_id)


def keep_pending(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Called by the error handler: a network failure means the person got no answer yet."""
    error = context.error
    transient = isinstance(error, (NetworkError, TimedOut, RetryAfter)) and not isinstance(error, BadRequest)
    if isinstance(update, Update) and transient:
        context.bot_data.setdefault(_KEEP, set()).add(update.update_id)


async def replay_pending(application: Application, store: Store) -> int:
    """Queue the journaled updates that never finished; returns how many."""
    pending = store.journal_pending()
    for body in pending:
        await application.update_queue.put(Update.de_json(body, application.bot))
    if pending:
        log.info("Replaying %d unfinished update(s) from the journal", len(pending))
    store.journal_prune()
    store.pictures_prune()
    return len(pending)
