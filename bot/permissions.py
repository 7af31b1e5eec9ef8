"""Who may do what: change a chat's settings, press a reply's buttons.

In a private chat, the person decides. In a group, settings are for admins, and a reply's
buttons for the person it answers (known from the store: button data comes from the client
and is never trusted) or an admin. Telegram is asked who is an admin (getChatMember), and its
answer is believed for a minute, so a busy group's presses don't spend its request budget.
"""

from __future__ import annotations

import asyncio
import time

from telegram import Bot, Chat, ChatMember, Update

__all__ = ["Members", "is_private"]

ADMINS = (ChatMember.ADMINISTRATOR, ChatMember.OWNER)
# Past this many remembered answers, the stale ones are dropped.
_CACHE_MAX = 10_000


def is_private(update: Update) -> bool:
    return update.effective_chat is not None and update.effective_chat.type == Chat.PRIVATE


class Members:
    """getChatMember, remembered for ``ttl_s`` seconds per (chat, user)."""

    def __init__(self, bot: Bot, ttl_s: float) -> None:
        self.bot, self.ttl_s = bot, ttl_s
        self._known: dict[tuple[int, int], tuple[bool, float]] = {}
        self._asking: dict[tuple[int, int], asyncio.Future[bool]] = {}

    async def is_admin(self, chat_id: int, user_id: int) -> bool:
        key = (chat_id, user_id)
        known = self._known.get(key)
        if known is not None and time.monotonic() - known[1] < self.ttl_s:
            return known[0]
        if key in self._asking:  # someone asked a moment ago (three quick presses): one question
            return await asyncio.shield(self._asking[key])
        asking = self._asking[key] = asyncio.get_running_loop().create_future()
        try:
            member = await self.bot.get_chat_member(chat_id, user_id)
        except BaseException as exc:
            asking.set_exception(exc)
            asking.exception()  # the others waiting get it; nobody else need look
            raise
        finally:
            del self._asking[key]
        admin = member.status in ADMINS
        asking.set_result(admin)
        now = time.monotonic()
        if len(self._known) >= _CACHE_MAX:
            self._known = {k: v for k, v in self._known.items() if now - v[1] < self.ttl_s}
        self._known[key] = (admin, now)
        return admin

    async def may_change_settings(self, update: Update) -> bool:
        """In private chats the user decides; in groups and channels, admins only.

        A button's authority is the person who pressed it (``callback_query.from``), never the
        message the button is on: in a channel, that is the channel's own post, whoever presses."""
        chat = update.effective_chat
        if chat is None or chat.type == Chat.PRIVATE:
            return True
        query, message = update.callback_query, update.message or update.channel_post
        signed = message is not None and message.sender_chat is not None and message.sender_chat.id == chat.id
        if query is None and signed:
            return True  # an anonymous admin posting as the group, or the channel's own post
        user = query.from_user if query is not None else update.effective_user
        return user is not None and await self.is_admin(chat.id, user.id)

    async def may_press(self, update: Update, owner_id: int | None) -> bool:
        """In private chats, yes; in groups, the person the reply answers, or an admin."""
        chat, user = update.effective_chat, update.effective_user
        if chat is None or user is None:
            return False
        if chat.type == Chat.PRIVATE:
            return True
        if owner_id is not None and user.id == owner_id and owner_id not in SHARED_IDS:
            return True
        return await self.is_admin(chat.id, user.id)


# Telegram's stand-in senders, shared across every chat: anonymous group admins, channel
# posts, automatic forwards from a linked channel. Owning a reply as one of them proves nothing.
SHARED_IDS = frozenset({1087968824, 136817688, 777000})
