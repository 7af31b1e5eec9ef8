"""The bot's SQLite database: the update journal, the cache of what the models said, chat
settings, and who and what each of the bot's replies is about.

    store/
      __init__.py   Store: the database, asynchronously, on a thread of its own
      database.py   Database: the SQL
      schema.py     the tables, versioned and migrated in place

Only ids, settings and generated text are stored, never picture bytes: a journaled update
keeps only what answering it needs (see :mod:`bot.updates.minimal`), and Telegram's file ids stay
valid to fetch the picture again.

Every query runs on the store's own thread, so a database that is locked (a backup, the
sqlite3 shell) or failing (a full disk) never stalls the event loop. Such a query is retried
with backoff for up to ``timeout_s``; past that it raises :class:`StoreUnavailable`, which
the bot treats as fatal (one log line, exit status 1, for its supervisor to restart it).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from .database import READ_TEXT_KEPT_S, ChatSettings, Database, PictureRef
from .replies import Forgotten

__all__ = ["ChatSettings", "Database", "Forgotten", "PictureRef", "Store", "StoreUnavailable"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class StoreUnavailable(Exception):
    """The database stayed locked or failing for longer than the bot waits for it."""


class Store:
    """The database, asynchronously: each query on the store's thread, retried while locked."""

    def __init__(
        self, path: Path, *, timeout_s: float = 120.0, read_text_kept_s: float = READ_TEXT_KEPT_S
    ) -> None:
        self.path, self.timeout_s, self.read_text_kept_s = path, timeout_s, read_text_kept_s
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._db: Database | None = None
        self.trouble_since: float | None = None  # monotonic time of the first failure in a row
        self.trouble: str = ""

    @classmethod
    def in_folder(
        cls, folder: Path, *, timeout_s: float = 120.0, read_text_kept_s: float = READ_TEXT_KEPT_S
    ) -> Store:
        return cls(folder / "bot.sqlite3", timeout_s=timeout_s, read_text_kept_s=read_text_kept_s)

    @property
    def healthy(self) -> bool:
        return self._db is not None and self.trouble_since is None

    async def open(self) -> None:
        if self._db is None:
            self._db = await self._call(lambda: Database(self.path), opening=True)

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
        self._thread.shutdown(wait=False)

    async def _call(self, work: Callable[[], T], *, opening: bool = False) -> T:
        if self._db is None and not opening:
            raise StoreUnavailable("the database is not open")
        loop = asyncio.get_running_loop()
        started, delay = time.monotonic(), 0.05
        while True:
            try:
                result = await loop.run_in_executor(self._thread, work)
            except sqlite3.OperationalError as exc:  # locked, busy, disk full, I/O: may pass
                if self.trouble_since is None:
                    self.trouble_since, self.trouble = time.monotonic(), str(exc)
                    log.warning("The database %s is unavailable (%s); retrying", self.path, exc)
                if time.monotonic() - started > self.timeout_s:
                    raise StoreUnavailable(
                        f"the database {self.path} has been unavailable for {self.timeout_s:.0f} s ({exc})"
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            except sqlite3.Error as exc:  # damaged, or not a database: waiting won't help
                self.trouble_since, self.trouble = self.trouble_since or time.monotonic(), str(exc)
                raise StoreUnavailable(f"the database {self.path} can't be used ({exc})") from exc
            if self.trouble_since is not None:
                log.info("The database is usable again, after %.1f s", time.monotonic() - self.trouble_since)
                self.trouble_since, self.trouble = None, ""
            return result

    def _run(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> Any:
        db = self._db
        return self._call(lambda: method(db, *args, **kwargs))

    # -- the database's methods, awaitable -----------------------------------------------

    async def chat_settings(self, chat_id: int) -> ChatSettings:
        return await self._run(Database.chat_settings, chat_id)

    async def change_chat(self, chat_id: int, **changes: Any) -> ChatSettings:
        return await self._run(Database.change_chat, chat_id, **changes)

    async def toggle_language(
        self, chat_id: int, code: str, available: Sequence[str], default: Sequence[str]
    ) -> tuple[str, ...]:
        return await self._run(Database.toggle_language, chat_id, code, tuple(available), tuple(default))

    async def migrate_chat(self, old: int, new: int) -> None:
        await self._run(Database.migrate_chat, old, new)

    async def journal_received(self, update_id: int, body: dict[str, Any]) -> str:
        return await self._run(Database.journal_received, update_id, body)

    async def journal_done(self, update_id: int, set_aside: str | None = None) -> None:
        await self._run(Database.journal_done, update_id, set_aside)

    async def journal_pending(self) -> list[tuple[int, str]]:
        return await self._run(Database.journal_pending)

    async def remember_reply(
        self, chat_id: int, message_id: int, owner_id: int, pictures: Sequence[PictureRef] = ()
    ) -> None:
        await self._run(Database.remember_reply, chat_id, message_id, owner_id, list(pictures))

    async def reply_owner(self, chat_id: int, message_id: int) -> int | None:
        return await self._run(Database.reply_owner, chat_id, message_id)

    async def pictures_of(self, chat_id: int, message_id: int) -> list[PictureRef]:
        return await self._run(Database.pictures_of, chat_id, message_id)

    async def latest_pictures(self, chat_id: int, since: float) -> list[PictureRef]:
        return await self._run(Database.latest_pictures, chat_id, since)

    async def forget_reply(self, chat_id: int, message_id: int) -> None:
        await self._run(Database.forget_reply, chat_id, message_id)

    async def known(self, file_unique_id: str, task: str) -> tuple[dict[str, str], str | None]:
        return await self._run(Database.known, file_unique_id, task)

    async def sent(self, key: str) -> dict[int, tuple[int, int]]:
        return await self._run(Database.sent, key)

    async def record_sent(
        self,
        key: str,
        position: int,
        chat_id: int,
        message_id: int,
        answer: str | None = None,
        picture: str | None = None,
    ) -> None:
        await self._run(Database.record_sent, key, position, chat_id, message_id, answer, picture)

    async def recent_answer(
        self, chat_id: int, picture: str, answer: str, since: float, other_than: str = ""
    ) -> int | None:
        return await self._run(Database.recent_answer, chat_id, picture, answer, since, other_than)

    async def forget_sent(self, key: str, position: int) -> None:
        await self._run(Database.forget_sent, key, position)

    async def answer_of(self, chat_id: int, message_id: int) -> list[tuple[int, int]]:
        return await self._run(Database.answer_of, chat_id, message_id)

    async def forget_answer(self, chat_id: int, message_id: int) -> None:
        await self._run(Database.forget_answer, chat_id, message_id)

    async def cached_texts(self, file_unique_id: str, task: str) -> dict[str, str]:
        return await self._run(Database.cached_texts, file_unique_id, task)

    async def cache_texts(self, file_unique_id: str, task: str, texts: dict[str, str]) -> None:
        await self._run(Database.cache_texts, file_unique_id, task, texts)

    async def bad_file(self, file_unique_id: str) -> str | None:
        return await self._run(Database.bad_file, file_unique_id)

    async def remember_bad_file(self, file_unique_id: str, reason: str) -> None:
        await self._run(Database.remember_bad_file, file_unique_id, reason)

    async def prune(self) -> dict[str, int]:
        return await self._run(Database.prune, self.read_text_kept_s)

    async def forget_chat(self, chat_id: int) -> Forgotten:
        return await self._run(Database.forget_chat, chat_id)
