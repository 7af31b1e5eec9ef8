"""A bounded wait line that serves chats in turn: round-robin across lanes, FIFO within one.

Shared by the event loop (which puts) and the model thread (which takes), so every method
holds one lock. A chat that sends fifty pictures gets one picture into each batch turn, as
does every other chat with something waiting: nobody waits behind someone else's album.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Hashable
from typing import Generic, TypeVar

__all__ = ["FairQueue"]

T = TypeVar("T")


class FairQueue(Generic[T]):
    def __init__(self) -> None:
        self._lanes: OrderedDict[Hashable, deque[T]] = OrderedDict()
        self._size = 0
        self._closed = False
        self._ready = threading.Condition()

    def __len__(self) -> int:
        return self._size

    def put(self, lane: Hashable, item: T) -> None:
        with self._ready:
            self._lanes.setdefault(lane, deque()).append(item)
            self._size += 1
            self._ready.notify()

    def remove(self, lane: Hashable, item: T) -> bool:
        """Take ``item`` out if it is still waiting (a request that timed out, say)."""
        with self._ready:
            items = self._lanes.get(lane)
            if not items or item not in items:
                return False
            items.remove(item)
            self._size -= 1
            if not items:
                del self._lanes[lane]
            return True

    def position(self, lane: Hashable, item: T) -> int:
        """1 for the next item served, 2 after it, ...; 0 if ``item`` is not waiting."""
        with self._ready:
            items = self._lanes.get(lane)
            if not items or item not in items:
                return 0
            depth = items.index(item)  # full rounds before its turn
            lanes = list(self._lanes)
            turn = lanes.index(lane)
            ahead = sum(
                min(len(self._lanes[other]), depth + (1 if i < turn else 0))
                for i, other in enumerate(lanes)
                if other != lane
            )
            return ahead + depth + 1

    def take(self, limit: int, max_wait_s: float, idle_timeout_s: float = 0.5) -> list[T]:
        """Up to ``limit`` items, in turn across lanes.

        Blocks until one item is there (or ``idle_timeout_s`` passes, for a clean shutdown
        check), then holds the batch open up to ``max_wait_s`` for more, while short of
        ``limit``.
        """
        with self._ready:
            if not self._size and not self._closed:
                self._ready.wait(idle_timeout_s)
            if not self._size:
                return []
            deadline = time.monotonic() + max_wait_s
            while self._size < limit and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            return self._take_round_robin(limit)

    def close(self) -> None:
        """Wake a waiting ``take``; later takes return at once."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def _take_round_robin(self, limit: int) -> list[T]:
        batch: list[T] = []
        while self._lanes and len(batch) < limit:
            lane, items = next(iter(self._lanes.items()))
            batch.append(items.popleft())
            self._size -= 1
            # The lane goes to the back of the line, or away when it's empty.
            del self._lanes[lane]
            if items:
                self._lanes[lane] = items
        return batch
