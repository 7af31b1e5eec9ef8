"""The bot's SQLite database: the update journal, the description cache, chat settings, and
which pictures each of the bot's replies is about (so that a reply to it can ask a question).

Only ids, settings and descriptions are stored, never picture bytes: a journaled update is
kept with people's names blanked, and Telegram's file ids stay valid to fetch again.
Queries are tiny and local, so they run on the event loop's thread. The database is in WAL
mode; journal entries go through a connection with ``synchronous=FULL`` (durable even
through a power cut before Telegram hears "received"), everything else through one with
``synchronous=NORMAL`` (durable through a crash of the process, and cheaper).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from captioning import Description

__all__ = ["LANGUAGES", "ChatSettings", "Language", "PictureRef", "Store"]

# How long a reply stays askable: a question about a month-old photo is rare, and the ids
# of people's pictures are not kept longer than they are useful.
PICTURES_KEPT_S = 30 * 24 * 3600

Language = Literal["en", "es", "both"]
LANGUAGES: tuple[Language, ...] = ("en", "es", "both")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_settings (
    chat_id INTEGER PRIMARY KEY,
    auto    INTEGER NOT NULL DEFAULT 1,
    lang    TEXT    NOT NULL DEFAULT 'both' CHECK (lang IN ('en', 'es', 'both'))
);
CREATE TABLE IF NOT EXISTS journal (
    update_id   INTEGER PRIMARY KEY,
    body        TEXT    NOT NULL,     -- the update as JSON, names blanked; '{}' once done
    received_at REAL    NOT NULL,
    done_at     REAL                  -- NULL until its reply was sent
);
CREATE INDEX IF NOT EXISTS journal_pending ON journal (update_id) WHERE done_at IS NULL;
CREATE TABLE IF NOT EXISTS reply_pictures (
    chat_id        INTEGER NOT NULL,
    message_id     INTEGER NOT NULL,  -- the bot's reply: a description, an album's, an answer
    position       INTEGER NOT NULL,  -- 1..N, as an album's answer numbers them
    file_id        TEXT    NOT NULL,
    file_unique_id TEXT    NOT NULL,
    file_size      INTEGER,
    created_at     REAL    NOT NULL,
    PRIMARY KEY (chat_id, message_id, position)
);
CREATE INDEX IF NOT EXISTS reply_pictures_age ON reply_pictures (created_at);
CREATE TABLE IF NOT EXISTS descriptions (
    file_unique_id TEXT PRIMARY KEY,  -- Telegram's id for the file's content
    english        TEXT NOT NULL,
    spanish        TEXT NOT NULL,
    created_at     REAL NOT NULL
);
"""

# Personal fields that replaying an update never needs.
_BLANKED = {"first_name": "", "last_name": None, "username": None, "title": None, "caption": None}


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
    lang: Language = "both"


class Store:
    """One SQLite file under the state folder."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._durable = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._durable.execute("PRAGMA synchronous=FULL")

    @classmethod
    def in_folder(cls, folder: Path) -> Store:
        return cls(folder / "bot.sqlite3")

    def close(self) -> None:
        self._durable.close()
        self._db.close()

    # -- chat settings -------------------------------------------------------------------

    def chat_settings(self, chat_id: int) -> ChatSettings:
        row = self._db.execute(
            "SELECT auto, lang FROM chat_settings WHERE chat_id = ?", (chat_id,)
        ).fetchone()
        return ChatSettings(bool(row[0]), row[1]) if row else ChatSettings()

    def set_auto(self, chat_id: int, auto: bool) -> None:
        self._db.execute(
            "INSERT INTO chat_settings (chat_id, auto) VALUES (?, ?) "
            "ON CONFLICT (chat_id) DO UPDATE SET auto = excluded.auto",
            (chat_id, int(auto)),
        )

    def set_lang(self, chat_id: int, lang: Language) -> None:
        if lang not in LANGUAGES:
            raise ValueError(f"lang must be one of {', '.join(LANGUAGES)}")
        self._db.execute(
            "INSERT INTO chat_settings (chat_id, lang) VALUES (?, ?) "
            "ON CONFLICT (chat_id) DO UPDATE SET lang = excluded.lang",
            (chat_id, lang),
        )

    # -- the journal ---------------------------------------------------------------------

    def journal_received(self, update_id: int, update: dict[str, Any]) -> None:
        """Write an update down before Telegram is told it arrived (idempotent)."""
        self._durable.execute(
            "INSERT OR IGNORE INTO journal (update_id, body, received_at) VALUES (?, ?, ?)",
            (update_id, json.dumps(_blank_names(update), ensure_ascii=False), time.time()),
        )

    def journal_done(self, update_id: int) -> None:
        """Its reply was sent (or it needed none): never replay it, and keep only its id.

        What people wrote (a question, or anything a group says while the bot can read it) is
        kept only while it may need replaying.
        """
        self._db.execute(
            "UPDATE journal SET done_at = ?, body = '{}' WHERE update_id = ? AND done_at IS NULL",
            (time.time(), update_id),
        )

    def journal_pending(self) -> list[dict[str, Any]]:
        """Updates received but not finished, oldest first: what a restart must replay."""
        rows = self._db.execute("SELECT body FROM journal WHERE done_at IS NULL ORDER BY update_id")
        return [json.loads(body) for (body,) in rows]

    def journal_prune(self, older_than_s: float = 7 * 24 * 3600) -> None:
        """Forget finished updates after a while; the journal is not an archive."""
        self._db.execute(
            "DELETE FROM journal WHERE done_at IS NOT NULL AND done_at < ?", (time.time() - older_than_s,)
        )

    # -- which pictures a reply is about -------------------------------------------------

    def remember_pictures(self, chat_id: int, message_id: int, pictures: list[PictureRef]) -> None:
        """The bot's message ``message_id`` is about ``pictures`` (in order)."""
        now = time.time()
        self._db.executemany(
            "INSERT OR REPLACE INTO reply_pictures "
            "(chat_id, message_id, position, file_id, file_unique_id, file_size, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (chat_id, message_id, n, p.file_id, p.unique_id, p.size, now)
                for n, p in enumerate(pictures, start=1)
            ],
        )

    def pictures_of(self, chat_id: int, message_id: int) -> list[PictureRef]:
        """The pictures the bot's message is about, in order; [] if it is about none."""
        rows = self._db.execute(
            "SELECT file_id, file_unique_id, file_size FROM reply_pictures "
            "WHERE chat_id = ? AND message_id = ? AND created_at >= ? ORDER BY position",
            (chat_id, message_id, time.time() - PICTURES_KEPT_S),
        )
        return [PictureRef(*row) for row in rows]

    def forget_pictures(self, chat_id: int, message_id: int) -> None:
        """The bot's message was deleted: nothing can reply to it any more."""
        self._db.execute(
            "DELETE FROM reply_pictures WHERE chat_id = ? AND message_id = ?", (chat_id, message_id)
        )

    def pictures_prune(self, older_than_s: float = PICTURES_KEPT_S) -> None:
        self._db.execute("DELETE FROM reply_pictures WHERE created_at < ?", (time.time() - older_than_s,))

    # -- the description cache -----------------------------------------------------------

    def cached_description(self, file_unique_id: str) -> Description | None:
        row = self._db.execute(
            "SELECT english, spanish FROM descriptions WHERE file_unique_id = ?", (file_unique_id,)
        ).fetchone()
        return Description(*row) if row else None

    def cache_description(self, file_unique_id: str, description: Description) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO descriptions (file_unique_id, english, spanish, created_at) "
            "VALUES (?, ?, ?, ?)",
            (file_unique_id, description.english, description.spanish, time.time()),
        )


def _blank_names(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (_BLANKED[k] if k in _BLANKED else _blank_names(v))
            for k, v in value.items()
            if not (k in _BLANKED and _BLANKED[k] is None)
        }
    if isinstance(value, list):
        return [_blank_names(v) for v in value]
    return value
