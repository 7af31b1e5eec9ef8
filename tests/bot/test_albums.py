"""Albums: photos that share a media_group_id get one answer, numbered in order."""

from __future__ import annotations

import dataclasses
import sqlite3

from bot.store import Database
from tests.support import pictures
from tests.support.bot_harness import FAST, running_bot
from tests.support.fake_telegram import command
from tests.support.waiting import journaled, until, until_handled

GROUP = -100777
# Long enough that a slow machine still sees an album's photos as one; the tests wait on
# events, not on this window.
ALBUMS = dataclasses.replace(FAST, album_quiet_s=2.0)


async def until_received(state, update_id: int) -> None:
    await until(lambda: update_id in journaled(state), f"update {update_id} in the journal")


def album(telegram, chat: int, colors: list[str], group_id: str = "album-1", **extra) -> list[dict]:
    return [
        telegram.message(chat, media_group_id=group_id, photo=telegram.photo(pictures.jpeg(c)), **extra)
        for c in colors
    ]


async def test_an_album_arriving_over_time_gets_one_numbered_answer(telegram, executor, tmp_path):
    messages = album(telegram, 5, ["red", "green", "blue"])
    state = tmp_path / "state"
    async with running_bot(telegram, state, executor, timings=ALBUMS):
        ids = []
        for message in messages:  # Telegram sends an album's photos one by one
            ids.append(await telegram.push(message))
            await until_received(state, ids[-1])
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(state, *ids)
    assert len(telegram.sent("sendMessage", chat_id=5)) == 1
    assert reply["reply_parameters"]["message_id"] == messages[0]["message_id"]
    assert reply["text"] == (
        "Automatic descriptions, may be wrong / Descripciones automáticas, pueden fallar (3):\n"
        "1. English: A red square.\n   Español: Un cuadrado rojo.\n"
        "2. English: A green square.\n   Español: Un cuadrado verde.\n"
        "3. English: A blue square.\n   Español: Un cuadrado azul."
    )


async def test_a_broken_picture_in_an_album_is_named_without_sinking_the_rest(telegram, executor, tmp_path):
    [red] = album(telegram, 5, ["red"])
    document = telegram.document(pictures.truncated_jpeg())
    broken = telegram.message(5, media_group_id="album-1", document=document)
    [yellow] = album(telegram, 5, ["yellow"])
    async with running_bot(telegram, tmp_path / "state", executor, timings=ALBUMS):
        for message in [red, yellow, broken]:  # numbered by when they were sent, not by arrival
            await telegram.push(message)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    lines = reply["text"].splitlines()
    assert lines[1].startswith("1. English: A red square.")
    assert lines[3] == "2. (this one couldn't be described)"
    assert lines[4].startswith("3. English: A yellow square.")


async def test_two_albums_in_one_chat_are_answered_apart(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor, timings=ALBUMS):
        await telegram.push(telegram.message(5, text="/lang en", entities=command("/lang en")))
        await telegram.wait_for("sendMessage", chat_id=5)
        for message in album(telegram, 5, ["red", "blue"], "a") + album(telegram, 5, ["green"], "b"):
            await telegram.push(message)
        replies = await telegram.wait_for("sendMessage", count=3, chat_id=5)
    texts = sorted(r["text"] for r in replies[1:])
    assert texts == [
        "Automatic descriptions of 1 pictures, may be wrong:\n1. A green square.",
        "Automatic descriptions of 2 pictures, may be wrong:\n1. A red square.\n2. A blue square.",
    ]


async def test_an_album_cut_by_a_crash_is_answered_as_one_after_the_restart(telegram, executor, tmp_path):
    state = tmp_path / "state"
    messages = album(telegram, GROUP, ["white", "red"], "album-9", user_id=12)
    db = Database(state / "bot.sqlite3")
    for update_id, message in enumerate(messages, start=70):  # journaled, never answered
        db.journal_received(update_id, {"update_id": update_id, "message": message})
    db.close()
    async with running_bot(telegram, state, executor, timings=ALBUMS):
        [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        await until_handled(state, 70, 71)
    assert len(telegram.sent("sendMessage", chat_id=GROUP)) == 1
    assert "1. English: A white square." in reply["text"] and "2. English: A red square." in reply["text"]
    with sqlite3.connect(state / "bot.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM journal WHERE done_at IS NULL").fetchone() == (0,)


async def test_an_album_split_by_a_restart_is_still_answered_as_one(telegram, executor, tmp_path):
    # The first photo arrives, the bot stops before the album is complete, the second photo
    # arrives while it is down: after the restart, one answer for both.
    state = tmp_path / "state"
    first, second = album(telegram, GROUP, ["green", "blue"], "album-10", user_id=12)
    async with running_bot(
        telegram, state, executor, timings=dataclasses.replace(ALBUMS, album_quiet_s=30.0)
    ):
        first_id = await telegram.push(first)
        await until_received(state, first_id)
    assert journaled(state) == {first_id: False}  # kept for the next start
    second_id = await telegram.push(second)
    async with running_bot(telegram, state, executor, timings=ALBUMS):
        [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        await until_handled(state, first_id, second_id)
    assert len(telegram.sent("sendMessage", chat_id=GROUP)) == 1
    assert "1. English: A green square." in reply["text"] and "2. English: A blue square." in reply["text"]


async def test_when_the_albums_answer_fails_every_photo_stays_pending(telegram, executor, tmp_path):
    state = tmp_path / "state"
    messages = album(telegram, 5, ["red", "green", "blue"], "album-11")
    telegram.fail_next["sendMessage"] = [telegram.bad_gateway()]
    retry_later = dataclasses.replace(ALBUMS, retry_delays_s=(3600.0,))
    async with running_bot(telegram, state, executor, timings=retry_later) as runner:
        ids = [await telegram.push(m) for m in messages]
        await telegram.wait_for("sendMessage", chat_id=5)  # the failed answer
        await until(  # each photo's update: to be tried again
            lambda: set(runner.svc.journal.retrying) == set(ids), "every photo set to be tried again"
        )
    assert journaled(state) == dict.fromkeys(ids, False)  # none marked done: all three replay
    async with running_bot(telegram, state, executor, timings=ALBUMS):
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
        await until_handled(state, *ids)
    assert replies[-1]["text"].count("square") == 3


async def test_an_album_of_only_broken_files_stays_silent_in_a_group(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor, timings=ALBUMS):
        ids = []
        for _ in range(2):
            document = telegram.document(pictures.pdf())
            message = telegram.message(GROUP, user_id=12, media_group_id="docs", document=document)
            ids.append(await telegram.push(message))
        await until_handled(tmp_path / "state", *ids)
    assert telegram.sent("sendMessage", chat_id=GROUP) == []
