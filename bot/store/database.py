"""The bot's database, in SQL: plain and synchronous; :class:`~bot.store.Store` runs it on a
thread of its own. Only ids, settings and generated text are stored, never picture bytes.

The database is in WAL mode. Journal entries go through a connection with
``synchronous=FULL`` (durable even through a power cut before Telegram hears "received"),
everything else through one with ``synchronous=NORMAL`` (durable through a crash of the
process, and cheaper).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .replies import PICTURES_KEPT_S, PictureRef, Replies
from .schema import migrate

__all__ = ["ChatSettings", "Database", "PictureRef"]

log = logging.getLogger(__name__)

# Generated text is kept as long, and no more than this many pictures' worth; the text read
# from pictures (letters, prescriptions) and its translations only READ_TEXT_KEPT_HOURS.
CACHE_KEPT_S = 30 * 24 * 3600
READ_TASKS = ("read", "translate")
READ_TEXT_KEPT_S = 24 * 3600
CACHE_MAX_PICTURES = 100_000
# Finished journal entries (their ids only) are kept a week; files that weren't pictures, a day.
JOURNAL_KEPT_S = 7 * 24 * 3600
BAD_FILES_KEPT_S = 24 * 3600
BAD_FILES_MAX = 10_000


@dataclass(frozen=True)
class ChatSettings:
    """How the bot behaves in one chat."""

    auto: bool = True  # describe every photo it sees, without being asked
    languages: tuple[str, ...] | None = None  # None: the bot's default for the chat
    autoread: bool = True  # read out the text of pictures that are mostly text
    detailed: bool = False  # a paragraph for each picture, not one sentence (/detail long)


class Database(Replies):
    """The SQL, plain and synchronous; :class:`Store` runs it on a thread of its own."""

    def __init__(self, path: Path) -> None:
        _private(path)
        # A short busy timeout: waiting longer is Store's job, with backoff, off this thread.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.2)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        migrate(self._db)
        self._durable = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=0.2)
        self._durable.execute("PRAGMA synchronous=FULL")

    def close(self) -> None:
        self._durable.close()
        self._db.close()

    # -- chat settings -------------------------------------------------------------------

    def chat_settings(self, chat_id: int) -> ChatSettings:
        row = self._db.execute(
            "SELECT auto, languages, autoread, detailed FROM chats WHERE chat_id = ?", (chat_id,)
        ).fetchone()
        if row is None:
            return ChatSettings()
        languages = tuple(row[1].split(",")) if row[1] else None
        return ChatSettings(bool(row[0]), languages, bool(row[2]), bool(row[3]))

    def set_chat(self, chat_id: int, field: str, value: Any) -> None:
        if field not in ("auto", "languages", "autoread", "detailed"):
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

    def change_chat(self, chat_id: int, **changes: Any) -> ChatSettings:
        """Change some of a chat's settings; what they all are now."""
        for field, value in changes.items():
            self.set_chat(chat_id, field, value)
        return self.chat_settings(chat_id)

    def toggle_language(
        self, chat_id: int, code: str, available: Sequence[str], default: Sequence[str]
    ) -> tuple[str, ...]:
        """Add ``code`` to the chat's languages, or take it away (a chat keeps at least one), in
        one transaction: two admins pressing at once both get their change. ``default``: the
        chat's languages while it has chosen none; ``available``: those the engine has."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            chosen = self.chat_settings(chat_id).languages or ()
            current = [lang for lang in chosen if lang in available] or list(default)
            if code not in current:
                current.append(code)
            elif len(current) > 1:
                current.remove(code)
            self.set_chat(chat_id, "languages", tuple(current))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return tuple(current)

    def migrate_chat(self, old: int, new: int) -> None:
        """A group became a supergroup: its settings and replies move to the new id."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO chats (chat_id, auto, languages, autoread, detailed) "
                "SELECT ?, auto, languages, autoread, detailed FROM chats WHERE chat_id = ?",
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

    # -- what the models said, by picture, task and language -----------------------------

    def known(self, file_unique_id: str, task: str) -> tuple[dict[str, str], str | None]:
        """What is known of a picture before it is sent to the models, in one trip: the texts
        cached for ``task`` (by language), and why the file was refused, if it was."""
        return self.cached_texts(file_unique_id, task), self.bad_file(file_unique_id)

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

    def prune(self, read_text_kept_s: float = READ_TEXT_KEPT_S) -> dict[str, int]:
        """Forget what is past its time, and the oldest past each size limit; how many rows went."""
        now = time.time()
        read = ", ".join("?" * len(READ_TASKS))
        read_text = self._db.execute(
            f"DELETE FROM texts WHERE task IN ({read}) AND created_at < ?",
            (*READ_TASKS, now - read_text_kept_s),
        ).rowcount
        gone = {
            "journal": self._db.execute(
                "DELETE FROM journal WHERE done_at IS NOT NULL AND done_at < ?", (now - JOURNAL_KEPT_S,)
            ).rowcount,
            "replies": sum(
                self._db.execute(
                    f"DELETE FROM {table} WHERE created_at < ?", (now - PICTURES_KEPT_S,)
                ).rowcount
                for table in ("reply_pictures", "reply_owner", "sent")
            ),
            "texts": self._db.execute(
                "DELETE FROM texts WHERE created_at < ?", (now - CACHE_KEPT_S,)
            ).rowcount,
            "bad_files": self._db.execute(
                "DELETE FROM bad_files WHERE created_at < ?", (now - BAD_FILES_KEPT_S,)
            ).rowcount,
        }
        gone["texts"] += (
            read_text
            + self._db.execute(
                "DELETE FROM texts WHERE file_unique_id IN (SELECT file_unique_id FROM texts "
                "GROUP BY file_unique_id ORDER BY max(created_at) DESC LIMIT -1 OFFSET ?)",
                (CACHE_MAX_PICTURES,),
            ).rowcount
        )
        gone["bad_files"] += self._db.execute(
            "DELETE FROM bad_files WHERE file_unique_id IN "
            "(SELECT file_unique_id FROM bad_files ORDER BY created_at DESC LIMIT -1 OFFSET ?)",
            (BAD_FILES_MAX,),
        ).rowcount
        return gone


def _private(path: Path) -> None:
    """The database's folder 0700, and the database 0600 (SQLite gives its -wal and -shm the
    same mode): the text read from people's pictures, and who asked what, are no one else's.
    A folder or file an older version made readable by all is tightened."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for target, mode in (
        (path.parent, 0o700),
        (path, 0o600),
        *((Path(f"{path}{end}"), 0o600) for end in _SIDE),
    ):
        try:
            if target.exists() and stat.S_IMODE(target.stat().st_mode) != mode:
                os.chmod(target, mode)
        except PermissionError:
            log.warning("%s can't be made private to this account (mode %o): check its owner", target, mode)


_SIDE = ("-wal", "-shm")
