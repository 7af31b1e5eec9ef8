"""Waiting on events, not on the clock: a slow machine must not turn a failure into a pass."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path


def journaled(state_dir: Path) -> dict[int, bool]:
    """update_id -> done, read as another process would."""
    path = Path(state_dir) / "bot.sqlite3"
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        return {u: d is not None for u, d in db.execute("SELECT update_id, done_at FROM journal")}


async def until_handled(state_dir: Path, *update_ids: int, timeout: float = 30.0) -> None:
    """Wait until the bot has finished with these updates (the journal marks them done): the
    proof that it has done all it will do with them, before asserting it said nothing."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        done = journaled(state_dir)
        if all(done.get(u) for u in update_ids):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"updates {update_ids} not handled in {timeout} s: {done}")
        await asyncio.sleep(0.02)


async def until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait until ``check()`` holds: state the bot leaves for anyone to read (its database,
    the journal's retries), checked often, with a deadline that names what never came."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not in {timeout} s")
        await asyncio.sleep(0.02)
