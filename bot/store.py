"""The bot's SQLite database: the update journal, the cache of what the models said, chat
settings, and who and what each of the bot's replies is about.

Only ids, settings and generated text are stored, never picture bytes: a journaled update
keeps only what answering it needs (see :mod:`bot.journal`), and Telegram's file ids stay
valid to fetch the picture again.

Every query runs on the store's own thread, so a database that is locked (a backup, the
sqlite3 shell) or failing (a full disk) never stalls the event loop. Such a query is retried
with backoff for up to ``timeout_s``; past that it raises :class:`StoreUnavailable`, which
the bot treats as fatal (one log line, exit status 1, for its supervisor to restart it).

The database is in WAL mode. Journal entries go through a connection with
``synchronous=FULL`` (durable even through a power cut before Telegram hears "received"),
everything else through one with ``synchronous=NORMAL`` (durable through a crash of the
process, and cheaper). The schema is versioned (``PRAGMA user_version``) and migrated in
place, so a database written by an older version opens as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ChatSettings", "Database", "PictureRef", "Store", "StoreUnavailable"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# How long a reply stays askable: a question about a month-old photo is rare, and the ids
# of people's pictures are not kept longer than they are useful.
PICTURES_KEPT_S = 30 * 24 * 3600
# Generated text is kept as long, and no more than this many pictures' worth.
CACHE_KEPT_S = 30 * 24 * 3600
CACHE_MAX_PICTURES = 100_000
# Finished journal entries (their ids only) are kept a week; files that weren't pictures, a day.
JOURNAL_KEPT_S = 7 * 24 * 3600
BAD_FILES_KEPT_S = 24 * 3600
BAD_FILES_MAX = 10_000

_MIGRATIONS: list[str] = [
    # 1: the first schema.
    """
    CREATE TABLE IF NOT EXISTS chat_settings (
        chat_id INTEGER PRIMARY KEY,
        auto    INTEGER NOT NULL DEFAULT 1,
        lang    TEXT    NOT NULL DEFAULT 'both' CHECK (lang IN ('en', 'es', 'both'))
    );
    CREATE TABLE IF NOT EXISTS journal (
        update_id   INTEGER PRIMARY KEY,
        body        TEXT    NOT NULL,
        received_at REAL    NOT NULL,
        done_at     REAL
    );
    CREATE INDEX IF NOT EXISTS journal_pending ON journal (update_id) WHERE done_at IS NULL;
    CREATE TABLE IF NOT EXISTS reply_pictures (
        chat_id        INTEGER NOT NULL,
        message_id     INTEGER NOT NULL,
        position       INTEGER NOT NULL,
        file_id        TEXT    NOT NULL,
        file_unique_id TEXT    NOT NULL,
        file_size      INTEGER,
        created_at     REAL    NOT NULL,
        PRIMARY KEY (chat_id, message_id, position)
    );
    CREATE INDEX IF NOT EXISTS reply_pictures_age ON reply_pictures (created_at);
    CREATE TABLE IF NOT EXISTS descriptions (
        file_unique_id TEXT PRIMARY KEY,
        english        TEXT NOT NULL,
        spanish        TEXT NOT NULL,
        created_at     REAL NOT NULL
    );
    """,
    # 2: who asked for each reply (the buttons' authority lives here, not in the buttons),
    # updates set aside, files that weren't pictures, any languages per chat, and generated
    # text cached per task and language.
    """
    ALTER TABLE journal ADD COLUMN set_aside TEXT;
    CREATE TABLE reply_owner (
        chat_id    INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        owner_id   INTEGER NOT NULL,
        created_at REAL    NOT NULL,
        PRIMARY KEY (chat_id, message_id)
    );
    CREATE INDEX reply_owner_age ON reply_owner (created_at);
    CREATE TABLE bad_files (
        file_unique_id TEXT PRIMARY KEY,
        reason         TEXT NOT NULL,
        created_at     REAL NOT NULL
    );
    CREATE TABLE chats (
        chat_id   INTEGER PRIMARY KEY,
        auto      INTEGER NOT NULL DEFAULT 1,
        languages TEXT,                       -- comma-separated codes in order, NULL for the default
        autoread  INTEGER NOT NULL DEFAULT 1
    );
    INSERT INTO chats (chat_id, auto, languages)
        SELECT chat_id, auto, CASE lang WHEN 'both' THEN 'en,es' ELSE lang END FROM chat_settings;
    DROP TABLE chat_settings;
    CREATE TABLE texts (
        file_unique_id TEXT NOT NULL,         -- Telegram's id for the file's content
        task           TEXT NOT NULL,         -- describe, describe_detailed, read, ...
        language       TEXT NOT NULL,         -- en, es, ... or empty for text read as it is written
        text           TEXT NOT NULL,
        created_at     REAL NOT NULL,
        PRIMARY KEY (file_unique_id, task, language)
    );
    CREATE INDEX texts_age ON texts (created_at);
    INSERT INTO texts (file_unique_id, task, language, text, created_at)
        SELECT replace(file_unique_id, '#detailed', ''),
               CASE WHEN file_unique_id LIKE '%#detailed' THEN 'describe_detailed' ELSE 'describe' END,
               'en', english, created_at FROM descriptions;
    INSERT INTO texts (file_unique_id, task, language, text, created_at)
        SELECT replace(file_unique_id, '#detailed', ''),
               CASE WHEN file_unique_id LIKE '%#detailed' THEN 'describe_detailed' ELSE 'describe' END,
               'es', spanish, created_at FROM descriptions WHERE spanish != '';
    DROP TABLE descriptions;
    """,
]


class StoreUnavailable(Exception):
    """The database stayed locked or failing for longer than the bot waits for it."""


@dataclass(frozen=True)
class PictureRef:
    """A picture as Telegram knows it: enough to fetch it again, never its bytes."""

    file_id: str
    unique_id: str
    size: int | None = None


@dataclass(frozen=True)
class ChatSettings:
    """How the bot behaves in one chat."""

    auto: bool = True  # describe every photo it sees, without being asked
    languages: tuple[str, ...] | None = None  # None: the bot's default for the chat
    autoread: bool = True  # read out the text of pictures that are mostly text


class Database:
    """The SQL, plain and synchronous; :class:`Store` runs it on a thread of its own."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A short busy timeout: waiting longer is Store's job, with backoff, off this thread.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.2)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self._durable = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.2)
        self._durable.execute("PRAGMA synchronous=FULL")

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'journal'").fetchone():
            version = 1  # written before the schema had a version
        for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, script.split(";")):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        self._durable.close()
        self._db.close()

    # -- chat settings -------------------------------------------------------------------

    def chat_settings(self, chat_id: int) -> ChatSettings:
        row = self._db.execute(
            "SELECT auto, languages, autoread FROM chats WHERE chat_id = ?", (chat_id,)
        ).fetchone()
        if row is None:
            return ChatSettings()
        languages = tuple(row[1].split(",")) if row[1] else None
        return ChatSettings(bool(row[0]), languages, bool(row[2]))

    def set_chat(self, chat_id: int, field: str, value: Any) -> None:
        if field not in ("auto", "languages", "autoread"):
            raise ValueError(f"no chat setting {field!r}")
        if field == "languages":
            value = ",".join(value) if value else None
        elif isinstance(value, bool):
            value = int(value)
        self._db.execute(
            f"INSERT INTO chats (chat_id, {field}) VALUES (?, ?) "
            f"ON CONFLICT (chat_id) DO UPDATE SET {field} = excluded.{field}",
            (chat_id, value),
        )

    def migrate_chat(self, old: int, new: int) -> None:
        """A group became a supergroup: its settings and replies move to the new id."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO chats (chat_id, auto, languages, autoread) "
                "SELECT ?, auto, languages, autoread FROM chats WHERE chat_id = ?",
                (new, old),
            )
            self._db.execute("DELETE FROM chats WHERE chat_id = ?", (old,))
            for table in ("reply_pictures", "reply_owner"):
                self._db.execute(f"UPDATE OR REPLACE {table} SET chat_id = ? WHERE chat_id = ?", (new, old))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    # -- the journal ---------------------------------------------------------------------

    def journal_received(self, update_id: int, body: dict[str, Any]) -> str:
        """Write an update down before Telegram is told it arrived. Telegram delivers an
        update again until a later getUpdates confirms it (and re-posts a webhook update whose
        200 came late), so the same id may come again: it is written once, and the answer
        says what it was: "new", "pending" (written before, not finished) or "done"."""
        cursor = self._durable.execute(
            "INSERT OR IGNORE INTO journal (update_id, body, received_at) VALUES (?, ?, ?)",
            (update_id, json.dumps(body, ensure_ascii=False), time.time()),
        )
        if cursor.rowcount:
            return "new"
        row = self._durable.execute(
            "SELECT done_at FROM journal WHERE update_id = ?", (update_id,)
        ).fetchone()
        return "pending" if row is None or row[0] is None else "done"

    def journal_done(self, update_id: int, set_aside: str | None = None) -> None:
        """Its reply was sent, it needed none, or it is set aside (``set_aside`` says why):
        never replay it, and keep only its id. What people wrote (a question, or anything a
        group says while the bot can read it) is kept only while it may need replaying."""
        self._db.execute(
            "UPDATE journal SET done_at = ?, body = '{}', set_aside = ? "
            "WHERE update_id = ? AND done_at IS NULL",
            (time.time(), set_aside, update_id),
        )

    def journal_pending(self) -> list[tuple[int, str]]:
        """(update id, body as JSON) of the updates received but not finished, oldest first."""
        rows = self._db.execute(
            "SELECT update_id, body FROM journal WHERE done_at IS NULL ORDER BY update_id"
        )
        return list(rows)

    # -- who and what a reply is about ---------------------------------------------------

    def remember_reply(
        self, chat_id: int, message_id: int, owner_id: int, pictures: Sequence[PictureRef]
    ) -> None:
        """The bot's message ``message_id`` answers ``owner_id`` about ``pictures`` (in order)."""
        now = time.time()
        self._db.execute(
            "INSERT OR REPLACE INTO reply_owner (chat_id, message_id, owner_id, created_at) "
            "VALUES (?, ?, ?, ?)",
            (chat_id, message_id, owner_id, now),
        )
        self._db.execute(
            "DELETE FROM reply_pictures WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )
        self._db.executemany(
            "INSERT INTO reply_pictures "
            "(chat_id, message_id, position, file_id, file_unique_id, file_size, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (chat_id, message_id, n, p.file_id, p.unique_id, p.size, now)
                for n, p in enumerate(pictures, start=1)
            ],
        )

    def reply_owner(self, chat_id: int, message_id: int) -> int | None:
        """Who the bot's message answers: the only person, besides admins, whose buttons work."""
        row = self._db.execute(
            "SELECT owner_id FROM reply_owner WHERE chat_id = ? AND message_id = ? AND created_at >= ?",
            (chat_id, message_id, time.time() - PICTURES_KEPT_S),
        ).fetchone()
        return row[0] if row else None

    def pictures_of(self, chat_id: int, message_id: int) -> list[PictureRef]:
        """The pictures the bot's message is about, in order; [] if it is about none."""
        rows = self._db.execute(
            "SELECT file_id, file_unique_id, file_size FROM reply_pictures "
            "WHERE chat_id = ? AND message_id = ? AND created_at >= ? ORDER BY position",
            (chat_id, message_id, time.time() - PICTURES_KEPT_S),
        )
        return [PictureRef(*row) for row in rows]

    def forget_reply(self, chat_id: int, message_id: int) -> None:
        """The bot's message was deleted: nothing can reply to it, or press its buttons, any more."""
        for table in ("reply_pictures", "reply_owner"):
            self._db.execute(
                f"DELETE FROM {table} WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
            )

    # -- what the models said, by picture, task and language -----------------------------

    def cached_texts(self, file_unique_id: str, task: str) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT language, text FROM texts WHERE file_unique_id = ? AND task = ? AND created_at >= ?",
            (file_unique_id, task, time.time() - CACHE_KEPT_S),
        )
        return dict(rows)

    def cache_texts(self, file_unique_id: str, task: str, texts: dict[str, str]) -> None:
        now = time.time()
        self._db.executemany(
            "INSERT OR REPLACE INTO texts (file_unique_id, task, language, text, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(file_unique_id, task, language, text, now) for language, text in texts.items()],
        )

    # -- files that weren't pictures -----------------------------------------------------

    def bad_file(self, file_unique_id: str) -> str | None:
        row = self._db.execute(
            "SELECT reason FROM bad_files WHERE file_unique_id = ? AND created_at >= ?",
            (file_unique_id, time.time() - BAD_FILES_KEPT_S),
        ).fetchone()
        return row[0] if row else None

    def remember_bad_file(self, file_unique_id: str, reason: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO bad_files (file_unique_id, reason, created_at) VALUES (?, ?, ?)",
            (file_unique_id, reason, time.time()),
        )

    # -- pruning -------------------------------------------------------------------------

    def prune(self) -> dict[str, int]:
        """Forget what is past its time, and the oldest past each size limit; how many rows went."""
        now = time.time()
        gone = {
            "journal": self._db.execute(
                "DELETE FROM journal WHERE done_at IS NOT NULL AND done_at < ?", (now - JOURNAL_KEPT_S,)
            ).rowcount,
            "replies": sum(
                self._db.execute(
                    f"DELETE FROM {table} WHERE created_at < ?", (now - PICTURES_KEPT_S,)
                ).rowcount
                for table in ("reply_pictures", "reply_owner")
            ),
            "texts": self._db.execute(
                "DELETE FROM texts WHERE created_at < ?", (now - CACHE_KEPT_S,)
            ).rowcount,
            "bad_files": self._db.execute(
                "DELETE FROM bad_files WHERE created_at < ?", (now - BAD_FILES_KEPT_S,)
            ).rowcount,
        }
        gone["texts"] += self._db.execute(
            "DELETE FROM texts WHERE file_unique_id IN (SELECT file_unique_id FROM texts "
            "GROUP BY file_unique_id ORDER BY max(created_at) DESC LIMIT -1 OFFSET ?)",
            (CACHE_MAX_PICTURES,),
        ).rowcount
        gone["bad_files"] += self._db.execute(
            "DELETE FROM bad_files WHERE file_unique_id IN "
            "(SELECT file_unique_id FROM bad_files ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
            (BAD_FILES_MAX,),
        ).rowcount
        return gone


class Store:
    """The database, asynchronously: each query on the store's thread, retried while locked."""

    def __init__(self, path: Path, *, timeout_s: float = 120.0) -> None:
        self.path, self.timeout_s = path, timeout_s
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._db: Database | None = None
        self.trouble_since: float | None = None  # monotonic time of the first failure in a row
        self.trouble: str = ""

    @classmethod
    def in_folder(cls, folder: Path, *, timeout_s: float = 120.0) -> Store:
        return cls(folder / "bot.sqlite3", timeout_s=timeout_s)

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

    def _run(self, method: Callable[..., T], *args: Any) -> Any:
        db = self._db
        return self._call(lambda: method(db, *args))

    # -- the database's methods, awaitable -----------------------------------------------

    async def chat_settings(self, chat_id: int) -> ChatSettings:
        return await self._run(Database.chat_settings, chat_id)

    async def set_auto(self, chat_id: int, auto: bool) -> None:
        await self._run(Database.set_chat, chat_id, "auto", auto)

    async def set_autoread(self, chat_id: int, autoread: bool) -> None:
        await self._run(Database.set_chat, chat_id, "autoread", autoread)

    async def set_languages(self, chat_id: int, languages: Sequence[str]) -> None:
        await self._run(Database.set_chat, chat_id, "languages", tuple(languages))

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

    async def forget_reply(self, chat_id: int, message_id: int) -> None:
        await self._run(Database.forget_reply, chat_id, message_id)

    async def cached_texts(self, file_unique_id: str, task: str) -> dict[str, str]:
        return await self._run(Database.cached_texts, file_unique_id, task)

    async def cache_texts(self, file_unique_id: str, task: str, texts: dict[str, str]) -> None:
        await self._run(Database.cache_texts, file_unique_id, task, texts)

    async def bad_file(self, file_unique_id: str) -> str | None:
        return await self._run(Database.bad_file, file_unique_id)

    async def remember_bad_file(self, file_unique_id: str, reason: str) -> None:
        await self._run(Database.remember_bad_file, file_unique_id, reason)

    async def prune(self) -> dict[str, int]:
        return await self._run(Database.prune)
