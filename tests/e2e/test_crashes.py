"""No photo lost, with real ``python -m bot`` processes: killed at the worst moment, stopped
with work in flight, locked out of their database, cut off from Telegram."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import sqlite3

from tests.support import pictures
from tests.support.bot_harness import fetch
from tests.support.fake_telegram import FakeTelegram, command
from tests.support.locks import locked_database
from tests.support.processes import describing_env
from tests.support.waiting import journaled, until, until_handled


def descriptions_by_photo(telegram: FakeTelegram) -> collections.Counter[int]:
    return collections.Counter(
        c.params["reply_parameters"]["message_id"]
        for c in telegram.calls
        if c.method == "sendMessage" and "square" in c.params["text"] and "reply_parameters" in c.params
    )


async def until_described(telegram: FakeTelegram, photos: list[int], timeout: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while set(descriptions_by_photo(telegram)) != set(photos):
        assert asyncio.get_running_loop().time() < deadline, descriptions_by_photo(telegram)
        await asyncio.sleep(0.05)


async def test_kill_9_right_after_telegram_confirms_loses_no_photo(
    telegram, tiny_model_dirs, tmp_path, bot_processes
):
    env = describing_env(telegram, tiny_model_dirs, tmp_path)
    photos: list[int] = []
    # Every download held until the last kill: nothing is described before one, however far a
    # loaded machine lets the bot get before it confirms, so nothing may be described twice.
    telegram.download_gate = asyncio.Event()
    for round_ in range(2):
        process = await bot_processes(env)
        await process.until_ready(telegram)
        killed = asyncio.get_running_loop().create_future()
        batch_ids = []

        def kill_on_confirm(offset: int, batch_ids=batch_ids, process=process, killed=killed) -> None:
            # The instant Telegram is told these updates arrived: nothing can be in the
            # journal by luck, and the photos are still on their way through the bot.
            if batch_ids and offset > max(batch_ids) and not killed.done():
                process.kill()
                killed.set_result(offset)

        telegram.on_get_updates = kill_on_confirm
        for i in range(6):
            color = ["red", "green", "blue"][i % 3]
            message = telegram.message(100 + round_ * 10 + i % 3, photo=telegram.photo(pictures.jpeg(color)))
            photos.append(message["message_id"])
            batch_ids.append(await telegram.push(message))
        await asyncio.wait_for(killed, 60)
        await process.wait()
        telegram.on_get_updates = None
    telegram.download_gate.set()

    process = await bot_processes(env)  # the restart replays what was unfinished
    await process.until_ready(telegram)
    await until_described(telegram, photos)
    logs = await process.stop()
    assert "Replaying" in logs  # the photos came back from the journal, not from luck
    counts = descriptions_by_photo(telegram)
    assert counts == dict.fromkeys(photos, 1)  # every photo described, once


async def push_held_photos(telegram: FakeTelegram, chat: int, count: int = 4) -> tuple[list[int], list[int]]:
    """Photos (one per chat from ``chat`` on) whose downloads the stand-in holds (a fresh
    ``download_gate``) until the test lets them go: in flight for certain. Their message ids
    and update ids."""
    telegram.download_gate = asyncio.Event()
    downloads = telegram.count("download")
    photos, ids = [], []
    for i in range(count):
        message = telegram.message(chat + i, photo=telegram.photo(pictures.jpeg("yellow")))
        photos.append(message["message_id"])
        ids.append(await telegram.push(message))
    await telegram.wait_for("download", count=downloads + count)
    return photos, ids


async def test_sigterm_keeps_what_is_in_flight_past_the_grace_and_finishes_what_ends_within_it(
    telegram, tiny_model_dirs, tmp_path, bot_processes
):
    """Two stops, three stories: photos still in flight when the grace ends are kept, and the
    restart answers them once; photos that finish within the grace are answered before exit."""
    env = describing_env(telegram, tiny_model_dirs, tmp_path, SHUTDOWN_GRACE_S="2")
    state = tmp_path / "state"
    process = await bot_processes(env)
    await process.until_ready(telegram)
    kept, kept_ids = await push_held_photos(telegram, 200)
    logs = await process.stop()  # the downloads are held past the grace
    assert process.returncode == 0 and "Traceback" not in logs, logs
    assert not descriptions_by_photo(telegram)
    assert {u for u, done in journaled(state).items() if not done} == set(kept_ids)  # kept for the restart

    telegram.download_gate.set()
    # A longer grace now: the bot exits as soon as its work is done, and a slow machine needs
    # more than 2 s to finish four photos after the test lets them go.
    process = await bot_processes({**env, "SHUTDOWN_GRACE_S": "20"})
    await process.until_ready(telegram)
    await until_described(telegram, kept)
    await until_handled(state, *kept_ids)

    finished, finished_ids = await push_held_photos(telegram, 210)
    process.process.send_signal(signal.SIGTERM)
    await process.wait_for_line("finishing the work in flight")
    telegram.download_gate.set()  # within the grace
    logs = await process.stop()
    assert process.returncode == 0 and "Traceback" not in logs, logs
    assert set(descriptions_by_photo(telegram)) == {*kept, *finished}  # answered before it exited
    assert all(journaled(state)[u] for u in finished_ids)  # and marked done
    assert telegram.confirmed_offset > max(finished_ids)  # and Telegram told: none comes again
    assert not {u for u, done in journaled(state).items() if not done}
    assert all(n == 1 for n in descriptions_by_photo(telegram).values())  # once each, no repeat


async def test_a_database_locked_for_seconds_loses_nothing_and_polling_that_stops_stops_the_bot(
    telegram, tiny_model_dirs, tmp_path, bot_processes
):
    """One bot, two troubles: its database locked for seconds (it waits, loses nothing, and
    goes on, /healthz 200 again), then polling that can't go on (it says so on /healthz and
    stops, status 1, after finishing its work). A clean stop's status 0 is the SIGTERM story's."""
    env = describing_env(telegram, tiny_model_dirs, tmp_path, METRICS_PORT="0", SHUTDOWN_GRACE_S="60")
    process = await bot_processes(env)
    await process.until_ready(telegram)
    port = int((await process.wait_for_line(r"/healthz on 127\.0\.0\.1:(\d+)")).group(1))
    healthz = f"http://127.0.0.1:{port}/healthz"
    # Five seconds: past every pause of the store's backoff (0.05 s doubling up to 2 s).
    async with locked_database(tmp_path / "state" / "bot.sqlite3", seconds=5.0):  # all five of them
        photos, ids = [], []
        for i in range(3):
            message = telegram.message(300 + i, photo=telegram.photo(pictures.jpeg("green")))
            photos.append(message["message_id"])
            ids.append(await telegram.push(message))
        await process.wait_for_line("database .* is unavailable")
        status, health = await asyncio.to_thread(fetch, healthz)
        assert status == 503 and "database: unavailable" in health
        assert telegram.confirmed_offset <= min(ids)  # nothing confirmed that isn't journaled
    await until_described(telegram, photos)
    later = telegram.message(310, photo=telegram.photo(pictures.jpeg("red")))
    await telegram.push(later)
    photos.append(later["message_id"])
    await until_described(telegram, photos)  # polling went on
    status, health = await asyncio.to_thread(fetch, healthz)
    assert status == 200, health

    # A proxy in front of the Bot API starts refusing getUpdates: polling can't go on by itself.
    # A photo held mid-download keeps the bot in its grace, /healthz answering, while it stops.
    [held], [update_id] = await push_held_photos(telegram, 500, count=1)
    telegram.fail_next["getUpdates"] = [{"error_code": 403, "description": "Forbidden: denied by the proxy"}]
    # Someone edits a message: the long poll ends, and the next getUpdates is refused.
    await telegram.push(telegram.message(500, text="fixed a typo"), kind="edited_message")
    await process.wait_for_line("Stopping:", timeout=30)
    status, health = await asyncio.to_thread(fetch, healthz)
    telegram.download_gate.set()
    code = await process.wait(timeout=60)
    assert status == 503 and health.splitlines() == ["updates: stopped", "models: ok", "database: ok"], health
    assert code == 1, process.output
    stops = [line for line in process.lines if "Stopping:" in line]
    assert len(stops) == 1 and "supervisor" in stops[0], process.output
    assert "Traceback" not in process.output
    # Every photo answered once, the last within the grace.
    assert descriptions_by_photo(telegram) == dict.fromkeys([*photos, held], 1)
    assert journaled(tmp_path / "state")[update_id]


async def test_a_database_that_stays_locked_stops_the_bot_with_one_line(
    telegram, tiny_model_dirs, tmp_path, bot_processes
):
    env = describing_env(telegram, tiny_model_dirs, tmp_path, STATE_DB_TIMEOUT_S="1")
    process = await bot_processes(env)
    await process.until_ready(telegram)
    async with locked_database(tmp_path / "state" / "bot.sqlite3"):  # until the bot has stopped
        await telegram.push(telegram.message(400, photo=telegram.photo(pictures.jpeg("green"))))
        code = await process.wait(timeout=25)
    assert code == 1, process.output
    stops = [line for line in process.lines if "Stopping:" in line]
    assert len(stops) == 1 and "database" in stops[0] and "supervisor" in stops[0]
    assert "Traceback" not in process.output
    assert telegram.confirmed_offset == 0  # never confirmed what wasn't journaled


def queued_replies(state) -> int:
    """How many "queued" replies the bot has written down (an answer's part 0)."""
    path = state / "bot.sqlite3"
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
        return db.execute("SELECT count(*) FROM sent WHERE position = 0").fetchone()[0]


async def test_after_a_crash_what_was_answered_is_not_answered_again_and_a_queued_reply_becomes_the_answer(
    telegram, tiny_model_dirs, tmp_path, bot_processes
):
    """Every getUpdates that would tell Telegram the updates arrived fails, and the bot is
    killed: Telegram hands them all out again to the next start. What was answered (a photo,
    a member's /lang) must not be answered again; a photo whose "queued" reply was sent must
    get its answer in that reply, not in a second message."""
    env = describing_env(telegram, tiny_model_dirs, tmp_path)
    state = tmp_path / "state"
    telegram.refuse_confirms = True
    photo = telegram.message(700, photo=telegram.photo(pictures.jpeg("blue")))
    # And a member's /lang full of words to echo (mentions, a link, over 4,096 characters).
    words = "@everyone https://example.org/x " + "fr " * 2000
    lang = telegram.message(-700, user_id=12, text=f"/lang {words}", entities=command("/lang"))
    # And a photo whose download waits past the 3 s of Timings.status_after_s.
    released = asyncio.Event()
    held = telegram.message(800, photo=telegram.photo(pictures.jpeg("green")))
    telegram.held_files.update(dict.fromkeys((size["file_id"] for size in held["photo"]), released))
    # All three in the first getUpdates: the ones after it would confirm them, and fail.
    update_id, lang_id, held_id = [await telegram.push(m) for m in (photo, lang, held)]
    process = await bot_processes(env)
    await process.until_ready(telegram)
    await until_handled(state, update_id, lang_id)
    [status] = await telegram.wait_for("sendMessage", chat_id=800, timeout=60)
    assert status["text"].startswith("Queued:")
    await until(lambda: queued_replies(state) == 1, "the queued reply written down")
    process.kill()
    await process.wait()
    assert telegram.confirmed_offset <= update_id  # never confirmed

    released.set()
    process = await bot_processes(env)  # Telegram hands the updates out again
    await process.until_ready(telegram)
    await until_handled(state, held_id)
    # Its next getUpdates tries to confirm them, and is refused; the one after (1 s later) isn't.
    await telegram.wait_for("getUpdates", count=telegram.count("getUpdates") + 1)
    telegram.refuse_confirms = False
    await until(lambda: telegram.confirmed_offset > held_id, "the updates confirmed at last")
    logs = await process.stop()
    assert descriptions_by_photo(telegram) == {photo["message_id"]: 1}, logs
    assert "delivered again" in logs
    [refused] = telegram.sent("sendMessage", chat_id=-700)  # once, and asked first: nothing echoed
    assert refused["text"] == "Only this group's admins can change that."
    [edit] = telegram.sent("editMessageText", chat_id=800)
    assert edit["message_id"] == telegram.message_id_of(status)  # the queued reply, edited
    assert "A green square." in edit["text"]
    assert telegram.count("sendMessage", 800) == 1  # and no second message
