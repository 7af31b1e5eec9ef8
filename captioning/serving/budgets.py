"""Picture bytes downloaded and not yet decoded, in all (``MAX_DOWNLOAD_MB_IN_FLIGHT``): past
it, downloads wait their turn. A flood of 20 MB files then costs this much memory, not 20 MB
times the queue."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Hashable

__all__ = ["ByteBudget"]


class ByteBudget:
    """Bytes downloaded and not yet decoded, in all; used on the event loop only.

    A download waits while the others hold the whole budget; one file larger than the budget
    still goes, alone.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._held: dict[int, int] = {}
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self, holder: Hashable, size: int) -> None:
        while self.used > 0 and self.used + size > self.limit:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        self._take(holder, size)

    def resize(self, holder: Hashable, size: int) -> None:
        self._take(holder, size)

    def release(self, holder: Hashable) -> None:
        self.used -= self._held.pop(id(holder), 0)
        while self._waiters:  # each waiter checks again whether it fits now
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _take(self, holder: Hashable, size: int) -> None:
        self.used += size - self._held.get(id(holder), 0)
        self._held[id(holder)] = size
