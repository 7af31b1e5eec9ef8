"""The database's schema, versioned (``PRAGMA user_version``) and migrated in place, so that a
database written by an older version opens as it is: each migration runs once, in one
transaction, in order."""

from __future__ import annotations

import sqlite3

__all__ = ["VERSION", "migrate"]

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
    # 3: what each answer sent, part by part (its "queued" reply as part 0), for answers tried
    # again or replayed to send only what is missing, and for "Delete" to remove all of it.
    """
    CREATE TABLE sent (
        key        TEXT    NOT NULL,
        position   INTEGER NOT NULL,
        chat_id    INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        created_at REAL    NOT NULL,
        answer     TEXT,                      -- describe, read, ...: what the answer is
        picture    TEXT,                      -- the file_unique_id it answers about, if one
        PRIMARY KEY (key, position)
    );
    CREATE INDEX sent_message ON sent (chat_id, message_id);
    CREATE INDEX sent_picture ON sent (chat_id, picture, answer);
    CREATE INDEX sent_age ON sent (created_at);
    """,
    # 4: short or detailed descriptions, per chat (/detail).
    """
    ALTER TABLE chats ADD COLUMN detailed INTEGER NOT NULL DEFAULT 0;
    """,
]

VERSION = len(_MIGRATIONS)


def migrate(db: sqlite3.Connection) -> None:
    """Bring ``db`` (in autocommit mode) up to :data:`VERSION`."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0 and db.execute("SELECT 1 FROM sqlite_master WHERE name = 'journal'").fetchone():
        version = 1  # written before the schema had a version
    for number, script in enumerate(_MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, script.split(";")):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
