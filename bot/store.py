"""The bot's SQLite database: per-chat settings (and, later, the journal and the cache).

Only ids, settings and descriptions are ever stored here, never picture bytes. Queries are
tiny and local, so they run on the event loop's thread; WAL keeps readers off writers' toes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["LANGUAGES", "ChatSettings", "Language", "Store"]

Language = Literal["en", "es", "both"]
LANGUAGES: tuple[Language, ...] = ("en", "es", "both")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_settings (
    chat_id INTEGER PRIMARY KEY,
    auto    INTEGER NOT NULL DEFAULT 1,
    lang    TEXT    NOT NULL DEFAULT 'both' CHECK (lang IN ('en', 'es', 'both'))
);
"""


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

    @classmethod
    def in_folder(cls, folder: Path) -> Store:
        return cls(folder / "bot.sqlite3")

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

    def close(self) -> None:
        self._db.close()
