"""Photos sent together (one ``media_group_id``), gathered into albums as they arrive.

Telegram delivers an album as separate updates, over a second or two. The first photo of an
album leads: it waits until no photo has joined for a quiet spell, and then answers for all
of them. The others wait for the leader's outcome: they finish when the answer was sent, and
fail with the leader's error when it wasn't, so that no photo's update is marked done before
the album is answered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from telegram import Message

__all__ = ["Album", "Albums"]


@dataclass(eq=False)
class Album:
    messages: list[Message] = field(default_factory=list)
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    outcome: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    async def settle(self, quiet_s: float, stopping: asyncio.Event) -> bool:
        """True once no photo has joined for ``quiet_s`` seconds; False if the bot began to
        stop first (the album may not be complete: it is kept for the next start)."""
        while not stopping.is_set():
            self.joined.clear()
            joined = asyncio.ensure_future(self.joined.wait())
            stop = asyncio.ensure_future(stopping.wait())
            done, pending = await asyncio.wait(
                {joined, stop}, timeout=quiet_s, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()
            if not done:
                return True
        return False

    def answered(self, error: BaseException | None = None) -> None:
        """The leader's outcome, for every other photo of the album."""
        if not self.outcome.done():
            if error is None:
                self.outcome.set_result(None)
            else:
                self.outcome.set_exception(error)
                self.outcome.exception()  # retrieved here: the followers may all be gone

    async def wait(self) -> None:
        """A follower's wait: returns when the album was answered, raises what stopped it."""
        await asyncio.shield(self.outcome)


class Albums:
    """The albums still gathering photos, by chat and media_group_id."""

    def __init__(self) -> None:
        self._open: dict[tuple[int, str], Album] = {}

    def join(self, message: Message) -> tuple[Album, bool]:
        """Add the photo to its album; True for the first photo, whose handler leads."""
        key = (message.chat_id, message.media_group_id or "")
        album = self._open.get(key)
        leader = album is None
        if album is None:
            album = self._open[key] = Album()
        if all(m.message_id != message.message_id for m in album.messages):  # a replay twice
            album.messages.append(message)
        album.joined.set()
        return album, leader

    def close(self, message: Message) -> None:
        """Photos arriving from now on start a new answer."""
        self._open.pop((message.chat_id, message.media_group_id or ""), None)
