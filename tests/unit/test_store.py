"""The bot's database: migrated in place, pruned by age and size, and patient with locks."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest

from bot.store import ChatSettings, Database, PictureRef, Store, StoreUnavailable, schema
from bot.store import database as store_module
from tests.support.locks import locked_database

# The schema a database written by the first release has (PRAGMA user_version 0).
FIRST_SCHEMA = """
CREATE TABLE chat_settings (
    chat_id INTEGER PRIMARY KEY,
    auto    INTEGER NOT NULL DEFAULT 1,
    lang    TEXT    NOT NULL DEFAULT 'both' CHECK (lang IN ('en', 'es', 'both'))
);
CREATE TABLE journal (
    update_id   INTEGER PRIMARY KEY,
    body        TEXT    NOT NULL,
    received_at REAL    NOT NULL,
    done_at     REAL
);
CREATE TABLE reply_pictures (
    chat_id INTEGER NOT NULL, message_id INTEGER NOT NULL, position INTEGER NOT NULL,
    file_id TEXT NOT NULL, file_unique_id TEXT NOT NULL, file_size INTEGER, created_at REAL NOT NULL,
    PRIMARY KEY (chat_id, message_id, position)
);
CREATE TABLE descriptions (
    file_unique_id TEXT PRIMARY KEY, english TEXT NOT NULL, spanish TEXT NOT NULL, created_at REAL NOT NULL
);
"""


def test_a_database_written_by_the_first_release_opens_with_everything_in_it(tmp_path):
    path = tmp_path / "bot.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(FIRST_SCHEMA)
        now = time.time()
        db.executemany(
            "INSERT INTO chat_settings VALUES (?, ?, ?)", [(5, 1, "es"), (-100, 0, "both"), (7, 1, "en")]
        )
        db.execute("INSERT INTO journal VALUES (1, '{\"update_id\": 1}', ?, NULL)", (now,))
        db.execute("INSERT INTO reply_pictures VALUES (5, 100, 1, 'f', 'u', 3, ?)", (now,))
        db.execute("INSERT INTO descriptions VALUES ('u', 'a red square', 'un cuadrado rojo', ?)", (now,))
        db.execute("INSERT INTO descriptions VALUES ('u#detailed', 'a red square on white', 'x', ?)", (now,))
    database = Database(path)
    try:
        assert database.chat_settings(5) == ChatSettings(True, ("es",))
        assert database.chat_settings(-100) == ChatSettings(False, ("en", "es"))
        assert database.chat_settings(7) == ChatSettings(True, ("en",))
        assert database.chat_settings(8) == ChatSettings()
        assert database.journal_pending() == [(1, '{"update_id": 1}')]
        assert database.pictures_of(5, 100) == [PictureRef("f", "u", 3)]
        assert database.cached_texts("u", "describe") == {"en": "a red square", "es": "un cuadrado rojo"}
        assert database.cached_texts("u", "describe_detailed")["en"] == "a red square on white"
    finally:
        database.close()
    Database(path).close()  # and opens again, already migrated
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION


def test_settings_survive_and_languages_keep_their_order(tmp_path):
    database = Database(tmp_path / "bot.sqlite3")
    database.set_chat(5, "languages", ("fr", "en"))
    database.set_chat(5, "auto", False)
    assert database.chat_settings(5) == ChatSettings(False, ("fr", "en"))
    with pytest.raises(ValueError):
        database.set_chat(5, "lang; DROP TABLE chats", "x")
    database.close()


def test_a_group_that_becomes_a_supergroup_keeps_its_settings_and_replies(tmp_path):
    database = Database(tmp_path / "bot.sqlite3")
    database.set_chat(-5, "auto", False)
    database.remember_reply(-5, 10, 42, [PictureRef("f", "u")])
    database.migrate_chat(-5, -1005)
    assert database.chat_settings(-1005).auto is False
    assert database.chat_settings(-5) == ChatSettings()
    assert database.pictures_of(-1005, 10) == [PictureRef("f", "u")]
    assert database.reply_owner(-1005, 10) == 42
    database.close()


def test_replies_are_askable_for_30_days_and_then_forgotten(tmp_path, monkeypatch):
    database = Database(tmp_path / "bot.sqlite3")
    database.remember_reply(5, 10, 42, [PictureRef("f", "u")])
    later = time.time() + 31 * 24 * 3600
    monkeypatch.setattr(store_module.time, "time", lambda: later)
    assert database.pictures_of(5, 10) == [] and database.reply_owner(5, 10) is None
    assert database.prune()["replies"] == 2
    database.close()


def test_the_cache_is_pruned_by_age_and_by_size(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "CACHE_MAX_PICTURES", 3)
    database = Database(tmp_path / "bot.sqlite3")
    start = time.time()
    for n in range(5):
        monkeypatch.setattr(store_module.time, "time", lambda n=n: start + n)
        database.cache_texts(f"u{n}", "describe", {"en": "x", "es": "y"})
    monkeypatch.setattr(store_module.time, "time", lambda: start + 10)
    assert database.prune()["texts"] == 4  # the two oldest pictures, two languages each
    assert [bool(database.cached_texts(f"u{n}", "describe")) for n in range(5)] == [
        False,
        False,
        True,
        True,
        True,
    ]
    monkeypatch.setattr(store_module.time, "time", lambda: start + 31 * 24 * 3600)
    database.prune()
    assert not any(database.cached_texts(f"u{n}", "describe") for n in range(5))
    database.close()


def test_finished_journal_entries_go_after_a_week_pending_ones_never(tmp_path, monkeypatch):
    database = Database(tmp_path / "bot.sqlite3")
    database.journal_received(1, {"update_id": 1})
    database.journal_received(2, {"update_id": 2})
    database.journal_done(1)
    later = time.time() + 8 * 24 * 3600
    monkeypatch.setattr(store_module.time, "time", lambda: later)
    assert database.prune()["journal"] == 1
    assert [u for u, _ in database.journal_pending()] == [2]
    database.close()


async def test_a_locked_database_is_waited_for_off_the_event_loop(tmp_path):
    store = Store.in_folder(tmp_path, timeout_s=30)
    await store.open()
    async with locked_database(store.path) as release:
        writing = asyncio.ensure_future(store.change_chat(5, auto=False))
        ticks = 0  # the loop keeps running meanwhile, however slow the machine
        while (store.healthy or ticks < 20) and not writing.done():
            assert ticks < 2000, "the write never found the database locked"
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks >= 20 and not writing.done() and not store.healthy
        release.set()
        await writing
    assert (await store.chat_settings(5)).auto is False and store.healthy
    await store.close()


async def test_a_database_locked_too_long_is_unavailable(tmp_path):
    store = Store.in_folder(tmp_path, timeout_s=0.3)
    await store.open()
    async with locked_database(store.path):  # released on leaving
        with pytest.raises(StoreUnavailable, match="unavailable for 0 s"):
            await store.journal_received(1, {"update_id": 1})
    await store.close()
