"""Another program holding the bot's database: what a backup tool or the sqlite3 shell does."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path


def _hold(path: Path, seconds: float, locked: threading.Event, release: threading.Event) -> None:
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.execute("BEGIN EXCLUSIVE")
    locked.set()
    release.wait(seconds)
    db.execute("ROLLBACK")
    db.close()


@contextlib.asynccontextmanager
async def locked_database(
    path: Path, seconds: float | None = None, release: threading.Event | None = None
) -> AsyncIterator[threading.Event]:
    """Hold an exclusive transaction on ``path`` from another thread; yields, once it is held,
    the event that ends it. Without ``seconds`` it is held until released, and leaving the block
    releases it; with ``seconds`` it is held that long (or until released), and leaving the
    block waits for it to end without cutting it short. Either way the thread is joined."""
    release = release or threading.Event()
    locked = threading.Event()
    holder = threading.Thread(
        target=_hold, args=(path, 30.0 if seconds is None else seconds, locked, release)
    )
    holder.start()
    try:
        assert await asyncio.to_thread(locked.wait, 10), f"{path} not locked in 10 s"
        yield release
    finally:
        if seconds is None:
            release.set()
        await asyncio.to_thread(holder.join)
