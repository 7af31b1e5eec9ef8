"""No photo lost: journal before confirm, replay after a crash, kill -9 for real."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sqlite3

from bot.store import Store
from tests import pictures
from tests.bot_harness import running_bot
from tests.fake_telegram import FakeTelegram
from tests.test_bot_process import bot_env, start_bot, stop_bot, until_ready


def journaled(state_dir) -> dict[int, bool]:
    """update_id -> done, read as another process would."""
    with sqlite3.connect(state_dir / "bot.sqlite3") as db:
        return {u: d is not None for u, d in db.execute("SELECT update_id, done_at FROM journal")}


async def test_every_update_is_journaled_before_telegram_hears_it_arrived(telegram, executor, tmp_path):
    state = tmp_path / "state"
    violations: list[tuple[int, list[int]]] = []
    pushed: list[int] = []

    def check(offset: int) -> None:  # the moment Telegram forgets everything below offset
        if offset and (state / "bot.sqlite3").exists():
            missing = [u for u in pushed if u < offset and u not in journaled(state)]
            if missing:
                violations.append((offset, missing))

    telegram.on_get_updates = check
    async with running_bot(telegram, state, executor):
        for i in range(6):
            pushed.append(
                await telegram.push(telegram.message(5 + i % 3, photo=telegram.photo(pictures.jpeg())))
            )
        for chat in (5, 6, 7):
            await telegram.wait_for("sendMessage", count=2, chat_id=chat)
        await telegram.settle(0.3)
    assert telegram.confirmed_offset > max(pushed)
    assert violations == []
    assert journaled(state) == dict.fromkeys(pushed, True)  # every one done after its reply


async def test_names_are_not_kept_in_the_journal(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg())))
        await telegram.wait_for("sendMessage", chat_id=5)
    raw = (tmp_path / "state" / "bot.sqlite3").read_bytes()
    assert b"Ana" not in raw


async def test_unfinished_updates_are_replayed_at_start(telegram, executor, tmp_path):
    state = tmp_path / "state"
    message = telegram.message(5, photo=telegram.photo(pictures.jpeg("green")))
    store = Store.in_folder(state)
    store.journal_received(41, {"update_id": 41, "message": message})  # received, then a crash
    store.close()
    async with running_bot(telegram, state, executor):
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.settle(0.2)
    assert "A green square." in reply["text"]
    assert reply["reply_parameters"]["message_id"] == message["message_id"]
    assert journaled(state) == {41: True}


async def test_a_reply_that_could_not_be_sent_is_retried_after_a_restart(telegram, executor, tmp_path):
    state = tmp_path / "state"
    telegram.fail_next["sendMessage"] = [FakeTelegram.bad_gateway()]
    async with running_bot(telegram, state, executor):
        update_id = await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        await telegram.wait_for("sendMessage", chat_id=5)  # the failed attempt
        await telegram.settle(0.3)
    assert journaled(state) == {update_id: False}
    async with running_bot(telegram, state, executor):
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
        await telegram.settle(0.2)
    assert "A red square." in replies[1]["text"]
    assert journaled(state) == {update_id: True}


# -- real processes, killed ------------------------------------------------------------------


def descriptions_by_photo(telegram: FakeTelegram) -> collections.Counter[int]:
    return collections.Counter(
        c.params["reply_parameters"]["message_id"]
        for c in telegram.calls
        if c.method == "sendMessage" and "square" in c.params["text"] and "reply_parameters" in c.params
    )


async def test_kill_9_right_after_telegram_confirms_loses_no_photo(telegram, tiny_model_dirs, tmp_path):
    env = bot_env(telegram, tiny_model_dirs, tmp_path)
    photos: list[int] = []
    kills = 0
    for round_ in range(2):
        process = await start_bot(env, tmp_path)
        await until_ready(telegram, process)
        killed = asyncio.get_running_loop().create_future()
        batch_ids = []

        def kill_on_confirm(offset: int, batch_ids=batch_ids, process=process, killed=killed) -> None:
            # The instant Telegram is told these updates arrived: nothing can be in the
            # journal by luck, and the photos are still on their way through the bot.
            if batch_ids and offset > max(batch_ids) and not killed.done():
                os.kill(process.pid, signal.SIGKILL)
                killed.set_result(offset)

        telegram.on_get_updates = kill_on_confirm
        for i in range(6):
            color = ["red", "green", "blue"][i % 3]
            message = telegram.message(100 + round_ * 10 + i % 3, photo=telegram.photo(pictures.jpeg(color)))
            photos.append(message["message_id"])
            batch_ids.append(await telegram.push(message))
        await asyncio.wait_for(killed, 60)
        await process.wait()
        kills += 1
        telegram.on_get_updates = None

    process = await start_bot(env, tmp_path)  # the restart replays what was unfinished
    try:
        await until_ready(telegram, process)
        deadline = asyncio.get_running_loop().time() + 60
        while set(descriptions_by_photo(telegram)) != set(photos):
            assert asyncio.get_running_loop().time() < deadline, descriptions_by_photo(telegram)
            await asyncio.sleep(0.1)
    finally:
        logs = await stop_bot(process)
    assert "Replaying" in logs  # the photos came back from the journal, not from luck
    counts = descriptions_by_photo(telegram)
    assert set(counts) == set(photos)  # every photo described
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates <= kills


async def test_sigterm_finishes_or_keeps_what_is_in_flight(telegram, tiny_model_dirs, tmp_path):
    env = bot_env(telegram, tiny_model_dirs, tmp_path)
    process = await start_bot(env, tmp_path)
    await until_ready(telegram, process)
    photos = []
    for i in range(8):
        message = telegram.message(200 + i % 4, photo=telegram.photo(pictures.jpeg("yellow")))
        photos.append(message["message_id"])
        await telegram.push(message)
    await telegram.wait_for("getUpdates", count=3)  # the photos were fetched
    logs = await stop_bot(process)  # SIGTERM, mid-flight
    assert process.returncode == 0, logs
    assert "Traceback" not in logs
    process = await start_bot(env, tmp_path)
    try:
        await until_ready(telegram, process)
        deadline = asyncio.get_running_loop().time() + 60
        while set(descriptions_by_photo(telegram)) != set(photos):
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.1)
    finally:
        await stop_bot(process)
    assert set(descriptions_by_photo(telegram)) == set(photos)
