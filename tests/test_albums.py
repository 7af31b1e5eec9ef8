"""Albums: photos that share a media_group_id get one answer, numbered in order."""

from __future__ import annotations

import asyncio

import pytest

from bot import albums
from bot.store import Store
from tests import pictures
from tests.bot_harness import running_bot
from tests.fake_telegram import command

GROUP = -100777


@pytest.fixture(autouse=True)
def quick_albums(monkeypatch):
    monkeypatch.setattr(albums, "QUIET_S", 0.5)


def album(telegram, chat: int, colors: list[str], group_id: str = "album-1", **extra) -> list[dict]:
    return [
        telegram.message(chat, media_group_id=group_id, photo=telegram.photo(pictures.jpeg(c)), **extra)
        for c in colors
    ]


async def test_an_album_arriving_over_time_gets_one_numbered_answer(telegram, executor, tmp_path):
    messages = album(telegram, 5, ["red", "green", "blue"])
    async with running_bot(telegram, tmp_path / "state", executor):
        for message in messages:
            await telegram.push(message)
            await asyncio.sleep(0.3)  # Telegram sends an album's photos one by one
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.settle(0.8)
    assert len(telegram.sent("sendMessage", chat_id=5)) == 1
    assert reply["reply_parameters"]["message_id"] == messages[0]["message_id"]
    assert reply["text"] == (
        "Automatic descriptions / Descripciones automáticas (3):\n"
        "1. English: A red square.\n   Español: Un cuadrado rojo.\n"
        "2. English: A green square.\n   Español: Un cuadrado verde.\n"
        "3. English: A blue square.\n   Español: Un cuadrado azul."
    )


async def test_a_broken_picture_in_an_album_is_named_without_sinking_the_rest(telegram, executor, tmp_path):
    [red] = album(telegram, 5, ["red"])
    document = telegram.document(pictures.truncated_jpeg())
    broken = telegram.message(5, media_group_id="album-1", document=document)
    [yellow] = album(telegram, 5, ["yellow"])
    async with running_bot(telegram, tmp_path / "state", executor):
        for message in [red, yellow, broken]:  # numbered by when they were sent, not by arrival
            await telegram.push(message)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    lines = reply["text"].splitlines()
    assert lines[1].startswith("1. English: A red square.")
    assert lines[3] == "2. (this one couldn't be described)"
    assert lines[4].startswith("3. English: A yellow square.")


async def test_two_albums_in_one_chat_are_answered_apart(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        await telegram.push(telegram.message(5, text="/lang en", entities=command("/lang en")))
        await telegram.wait_for("sendMessage", chat_id=5)
        for message in album(telegram, 5, ["red", "blue"], "a") + album(telegram, 5, ["green"], "b"):
            await telegram.push(message)
        replies = await telegram.wait_for("sendMessage", count=3, chat_id=5)
    texts = sorted(r["text"] for r in replies[1:])
    assert texts == [
        "Automatic descriptions of 1 pictures:\n1. A green square.",
        "Automatic descriptions of 2 pictures:\n1. A red square.\n2. A blue square.",
    ]


async def test_an_album_cut_by_a_crash_is_answered_as_one_after_the_restart(telegram, executor, tmp_path):
    state = tmp_path / "state"
    messages = album(telegram, GROUP, ["white", "red"], "album-9", user_id=12)
    store = Store.in_folder(state)
    for update_id, message in enumerate(messages, start=70):  # journaled, never answered
        store.journal_received(update_id, {"update_id": update_id, "message": message})
    store.close()
    async with running_bot(telegram, state, executor):
        [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        await telegram.settle(0.8)
    assert len(telegram.sent("sendMessage", chat_id=GROUP)) == 1
    assert "1. English: A white square." in reply["text"] and "2. English: A red square." in reply["text"]
    import sqlite3

    with sqlite3.connect(state / "bot.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM journal WHERE done_at IS NULL").fetchone() == (0,)


async def test_an_album_of_only_broken_files_stays_silent_in_a_group(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        for _ in range(2):
            document = telegram.document(pictures.pdf())
            await telegram.push(telegram.message(GROUP, user_id=12, media_group_id="docs", document=document))
        await telegram.settle(1.5)
    assert telegram.sent("sendMessage", chat_id=GROUP) == []
