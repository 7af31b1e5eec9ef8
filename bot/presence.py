""" "typing…" in a chat while the bot works there, within Telegram's limits.

Every chat action counts against Telegram's budget: about 30 requests a second in all, and
20 messages a minute in a group. So one indicator runs per chat (and topic), however many
pictures are in flight there: in a private chat it is refreshed every few seconds until the
last answer is sent; in a group it is sent once per burst of work, so the group's budget goes
to the answers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from telegram import Bot, Chat, Message
from telegram.constants import ChatAction
from telegram.error import TelegramError

from .settings import Timings

__all__ = ["Presence"]


@dataclass
class _Working:
    count: int
    task: asyncio.Task[None]


class Presence:
    def __init__(self, bot: Bot, timings: Timings) -> None:
        self.bot, self.timings = bot, timings
        self._chats: dict[tuple[int, int | None], _Working] = {}

    @contextlib.asynccontextmanager
    async def working(self, message: Message) -> AsyncIterator[None]:
        """Show "typing…" in ``message``'s chat while the block runs (and others like it)."""
        thread = message.message_thread_id if message.is_topic_message else None
        key = (message.chat_id, thread)
        working = self._chats.get(key)
        if working is None:
            private = message.chat.type == Chat.PRIVATE
            task = asyncio.create_task(self._show(message.chat_id, thread, refresh=private))
            working = self._chats[key] = _Working(0, task)
        working.count += 1
        try:
            yield
        finally:
            working.count -= 1
            if working.count == 0:
                working.task.cancel()
                if self._chats.get(key) is working:
                    del self._chats[key]

    async def _show(self, chat_id: int, thread: int | None, *, refresh: bool) -> None:
        # An answer quicker than this needs no indicator: the reply itself arrives first.
        await asyncio.sleep(self.timings.typing_after_s)
        while True:
            with contextlib.suppress(TelegramError):
                await self.bot.send_chat_action(chat_id, ChatAction.TYPING, message_thread_id=thread)
            if not refresh:
                return
            await asyncio.sleep(self.timings.typing_refresh_s)
