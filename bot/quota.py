"""What one person's asks may make the bot say in a chat: at most PERSON_MESSAGES_PER_MINUTE
messages' worth a minute (a file: one for every 4,096 characters), whatever the asks are.

Model work has its own limit (MAX_QUEUED_PER_USER), but a cached answer costs no model work:
five /read of a text read before would be fifteen messages, at once, in a group. Past the
limit, a person hears once, quietly, that the bot will answer them again in a minute, and the
asks meanwhile go unanswered; a button press gets its answer as a toast, which adds nothing to
the chat. Telegram's stand-in senders (anonymous admins, a channel) count per chat, as one.
Photos described by themselves in a group count against nobody: they are at most two
messages a photo or album.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Coroutine, Hashable
from typing import Any

from telegram import Update

from .context import BotContext, chat_of
from .messages import message, user_language
from .permissions import SHARED_IDS
from .updates.processor import sent_so_far

__all__ = ["PersonQuota", "limited"]

WINDOW_S = 60.0

Callback = Callable[[Update, BotContext], Coroutine[Any, Any, None]]


class PersonQuota:
    """Messages' worth sent for each (chat, person) in the last minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: dict[Hashable, collections.deque[tuple[float, int]]] = {}
        self._told: dict[Hashable, float] = {}

    def over(self, who: Hashable) -> bool:
        """Whether ``who`` has had all the minute allows."""
        return self._used(who) >= self.per_minute

    def charge(self, who: Hashable, units: int) -> None:
        """``units`` more (fewer, when below 0: a reservation given back)."""
        if units:
            self._sent.setdefault(who, collections.deque()).append((time.monotonic(), units))

    def tell(self, who: Hashable) -> bool:
        """Whether to tell ``who`` they are past the limit: once in a minute."""
        now = time.monotonic()
        if now - self._told.get(who, -WINDOW_S) < WINDOW_S:
            return False
        self._told[who] = now
        return True

    def _used(self, who: Hashable) -> int:
        sent = self._sent.get(who)
        if not sent:
            return 0
        while sent and time.monotonic() - sent[0][0] > WINDOW_S:
            sent.popleft()
        if not sent:
            del self._sent[who]
            self._told.pop(who, None)
            return 0
        return sum(units for _, units in sent)


def person(update: Update) -> Hashable:
    """Whose quota an ask counts against: the person in this chat (shared senders: the chat)."""
    chat = chat_of(update)
    user = update.effective_user
    if user is None or user.id in SHARED_IDS:
        return (chat.id, "shared")
    return (chat.id, user.id)


def limited(callback: Callback) -> Callback:
    """``callback`` within its asker's quota: past it, one quiet notice a minute, then nothing."""

    async def within_quota(update: Update, context: BotContext) -> None:
        quota, who = context.services.quota, person(update)
        if quota.over(who):
            await _past_it(update, context, quota.tell(who))
            return
        # One message is taken at once, so asks handled side by side can't all pass; what the
        # ask turns out to send is settled after.
        quota.charge(who, 1)
        before = sent_so_far()
        try:
            await callback(update, context)
        finally:
            quota.charge(who, sent_so_far() - before - 1)

    within_quota.__doc__ = callback.__doc__
    return within_quota


async def _past_it(update: Update, context: BotContext, tell: bool) -> None:
    text = message("slow_down", user_language(update.effective_user))
    if update.callback_query is not None:
        await update.callback_query.answer(text)  # a toast: nothing more in the chat
    elif tell and update.effective_message is not None:
        await update.effective_message.reply_text(text)
