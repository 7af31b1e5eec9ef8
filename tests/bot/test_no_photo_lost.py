"""No photo lost: journal before confirm, keep only what a replay needs, retry in the running
bot, replay after a crash or a stop, survive a locked database; real processes, killed."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3
import threading
import time

import pytest

from bot.store import Database, PictureRef
from captioning.serving.executor import Executor
from tests.support import pictures
from tests.support.bot_harness import FAST, fetch, running_bot
from tests.support.describers import Wrapped
from tests.support.fake_telegram import FakeTelegram
from tests.support.locks import locked_database
from tests.support.waiting import journaled, until, until_handled

# Retries far enough away that a test sees the update pending, not retried.
NO_RETRY_YET = dataclasses.replace(FAST, retry_delays_s=(3600.0,))


def bodies(state_dir) -> dict[int, str]:
    with sqlite3.connect(state_dir / "bot.sqlite3") as db:
        return dict(db.execute("SELECT update_id, body FROM journal"))


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
        await until_handled(state, *pushed)
    assert telegram.confirmed_offset > max(pushed)
    assert violations == []
    assert journaled(state) == dict.fromkeys(pushed, True)  # every one done after its reply


async def test_a_pending_update_keeps_only_what_answering_it_needs(telegram, executor, tmp_path):
    # Read while the updates are still pending, when their bodies are still there.
    state = tmp_path / "state"
    telegram.fail_next["sendMessage"] = [FakeTelegram.bad_gateway()] * 4
    who = {"language": "es", "user_id": 31}
    forwarded = telegram.message(
        5,
        photo=telegram.photo(pictures.jpeg("red")),
        caption="what color is it?",
        forward_origin={"type": "hidden_user", "date": 1, "sender_user_name": "Secret Sender"},
        author_signature="Signed By Carmen",
        **who,
    )
    forwarded["from"].update(last_name="Lopez", username="ana_handle")
    contact = telegram.message(
        5,
        contact={"phone_number": "+34 600 111 222", "first_name": "Bea", "last_name": "Ruiz", "user_id": 77},
        **who,
    )
    named_file = telegram.message(
        5, document=telegram.document(pictures.jpeg("blue"), name="passport-scan.jpg")
    )
    venue = telegram.message(
        5,
        venue={
            "location": {"latitude": 40.4168, "longitude": -3.7038},
            "title": "Cafe Escondido",
            "address": "Calle Mayor 9",
        },
        location={"latitude": 40.4168, "longitude": -3.7038},
    )
    async with running_bot(telegram, state, executor, timings=NO_RETRY_YET) as runner:
        ids = [await telegram.push(m) for m in (forwarded, contact, named_file, venue)]
        await until(
            lambda: set(runner.svc.journal.retrying) == set(ids), "every odd update set to be tried again"
        )
        kept = bodies(state)
    raw = " ".join(kept[i] for i in ids)
    for secret in (
        "Ana",
        "Lopez",
        "ana_handle",
        "Secret Sender",
        "Carmen",
        "+34 600",
        "Bea",
        "Ruiz",
        "passport-scan",
        "Cafe Escondido",
        "Calle Mayor",
        "40.4168",
    ):
        assert secret not in raw, secret
    first = json.loads(kept[ids[0]])["message"]
    assert first["caption"] == "what color is it?"  # needed to answer it, so kept until then
    assert first["from"]["language_code"] == "es" and first["from"]["id"] == 31
    assert [size["file_id"] for size in first["photo"]] == [size["file_id"] for size in forwarded["photo"]]


async def test_unfinished_updates_are_replayed_at_start(telegram, executor, tmp_path):
    state = tmp_path / "state"
    message = telegram.message(5, photo=telegram.photo(pictures.jpeg("green")))
    db = Database(state / "bot.sqlite3")
    db.journal_received(41, {"update_id": 41, "message": message})  # received, then a crash
    db.close()
    async with running_bot(telegram, state, executor):
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(state, 41)
    assert "A green square." in reply["text"]
    assert reply["reply_parameters"]["message_id"] == message["message_id"]


async def test_a_reply_telegram_didnt_take_is_retried_in_the_running_bot(telegram, executor, tmp_path):
    state = tmp_path / "state"
    telegram.fail_next["sendMessage"] = [
        FakeTelegram.bad_gateway(),
        {"error_code": 500, "description": "Internal"},
    ]
    quick_retries = dataclasses.replace(FAST, retry_delays_s=(0.2, 0.4))
    async with running_bot(telegram, state, executor, timings=quick_retries):
        update_id = await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        replies = await telegram.wait_for("sendMessage", count=3, chat_id=5)
        await until_handled(state, update_id)
    assert "A red square." in replies[-1]["text"]
    assert len(telegram.sent("sendMessage")) == 3  # three tries, and no restart was needed


async def test_a_permanent_refusal_is_given_up_at_once(telegram, executor, tmp_path, caplog):
    caplog.set_level("INFO", logger="bot")
    state = tmp_path / "state"
    telegram.fail_next["sendMessage"] = [FakeTelegram.blocked()]
    quick_retries = dataclasses.replace(FAST, retry_delays_s=(0.05,))
    async with running_bot(telegram, state, executor, timings=quick_retries):
        update_id = await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        await until_handled(state, update_id)
    assert telegram.count("sendMessage") == 1
    assert len([r for r in caplog.records if "not allowed to reply" in r.getMessage()]) == 1


async def test_a_reply_that_could_not_be_sent_is_retried_after_a_restart(telegram, executor, tmp_path):
    state = tmp_path / "state"
    telegram.fail_next["sendMessage"] = [FakeTelegram.bad_gateway()]
    async with running_bot(telegram, state, executor, timings=NO_RETRY_YET) as runner:
        update_id = await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        await until(
            lambda: update_id in runner.svc.journal.retrying, "the unsent reply set to be tried again"
        )
    assert journaled(state) == {update_id: False}
    async with running_bot(telegram, state, executor):
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
        await until_handled(state, update_id)
    assert "A red square." in replies[1]["text"]


async def test_a_caption_question_is_answered_after_a_replay(telegram, executor, tmp_path):
    state = tmp_path / "state"
    telegram.fail_next["sendMessage"] = [FakeTelegram.bad_gateway()]
    photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("blue")), caption="what color is it?")
    async with running_bot(telegram, state, executor, timings=NO_RETRY_YET) as runner:
        update_id = await telegram.push(photo)
        await until(
            lambda: update_id in runner.svc.journal.retrying, "the unsent reply set to be tried again"
        )
    async with running_bot(telegram, state, executor):
        replies = await telegram.wait_for("sendMessage", count=3, chat_id=5)
        await until_handled(state, update_id)
    assert replies[-1]["text"] == "Answer: Blue.\nRespuesta: Azul."


async def test_a_replayed_photo_telegram_no_longer_has_is_said_plainly(telegram, executor, tmp_path):
    state = tmp_path / "state"
    message = telegram.message(5, photo=telegram.photo(pictures.jpeg("green")))
    for size in message["photo"]:
        del telegram.files[size["file_id"]]  # gone while the bot was down
    db = Database(state / "bot.sqlite3")
    db.journal_received(77, {"update_id": 77, "message": message})
    db.close()
    telegram.fail_next["getFile"] = [
        {
            "error_code": 400,
            "description": "Bad Request: wrong file_id or the file is temporarily unavailable",
        }
    ]
    async with running_bot(telegram, state, executor):
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(state, 77)
    assert reply["text"] == "That picture is no longer available; please send it again."


ODD = {
    "venue": {
        "venue": {"location": {"latitude": 1.5, "longitude": 2.5}, "title": "A cafe", "address": "Main St 1"},
        "location": {"latitude": 1.5, "longitude": 2.5},
    },
    "poll": {
        "poll": {
            "id": "p1",
            "question": "Lunch?",
            "options": [
                {"text": "yes", "voter_count": 0, "persistent_id": "o1"},
                {"text": "no", "voter_count": 0, "persistent_id": "o2"},
            ],
            "total_voter_count": 0,
            "is_closed": False,
            "is_anonymous": True,
            "type": "regular",
            "allows_multiple_answers": False,
            "allows_revoting": False,
            "members_only": False,
        }
    },
    "contact": {"contact": {"phone_number": "+1 555 0100", "first_name": "Bea", "user_id": 77}},
    "dice": {"dice": {"emoji": "🎲", "value": 3}},
    "game": {
        "game": {
            "title": "Blocks",
            "description": "A game",
            "photo": [{"file_id": "g", "file_unique_id": "g", "width": 1, "height": 1}],
        }
    },
    "location": {"location": {"latitude": 1.5, "longitude": 2.5}},
}


async def test_odd_updates_left_pending_do_not_stop_a_restart(telegram, executor, tmp_path):
    state = tmp_path / "state"
    odd = [telegram.message(5, **content) for content in ODD.values()]
    questions = [telegram.message(5, text="what is this?", reply_to_message=m) for m in odd]
    telegram.fail_next["sendMessage"] = [FakeTelegram.bad_gateway()] * (len(odd) * 2)
    async with running_bot(telegram, state, executor, timings=NO_RETRY_YET) as runner:
        ids = [await telegram.push(m) for m in odd + questions]
        await until(  # each one's reply failed
            lambda: set(runner.svc.journal.retrying) == set(ids), "every failed reply set to be tried again"
        )
    assert journaled(state) == dict.fromkeys(ids, False)
    async with running_bot(telegram, state, executor):
        await until_handled(state, *ids)  # replayed, and answered
        photo = await telegram.push(telegram.message(6, photo=telegram.photo(pictures.jpeg("red"))))
        [reply] = await telegram.wait_for("sendMessage", chat_id=6)
        await until_handled(state, photo)
    assert "A red square." in reply["text"]


async def test_a_live_update_the_library_cant_read_is_set_aside_and_polling_goes_on(
    telegram, executor, tmp_path, caplog
):
    # A shape from a newer Bot API than python-telegram-bot knows: a poll option without a
    # field it now requires. Telegram would send it again and again if it were never confirmed.
    state = tmp_path / "state"
    odd = telegram.message(5, poll={"id": "p", "question": "?", "options": [{"text": "a", "voter_count": 0}]})
    async with running_bot(telegram, state, executor):
        odd_id = await telegram.push(odd)
        photo = await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(state, odd_id, photo)
    assert "A red square." in reply["text"]
    assert telegram.confirmed_offset > photo
    [line] = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert line.startswith(f"Update {odd_id} set aside: it can't be read")


async def test_an_entry_that_cant_be_read_back_is_set_aside(telegram, executor, tmp_path, caplog):
    state = tmp_path / "state"
    db = Database(state / "bot.sqlite3")
    db.journal_received(90, {"update_id": 90, "message": {"message_id": "x", "date": "soon", "chat": 5}})
    db.close()
    with sqlite3.connect(state / "bot.sqlite3") as raw:
        raw.execute("INSERT INTO journal (update_id, body, received_at) VALUES (91, 'not json', 0)")
    async with running_bot(telegram, state, executor):
        await until_handled(state, 90, 91)
        await telegram.push(telegram.message(6, photo=telegram.photo(pictures.jpeg("red"))))
        [reply] = await telegram.wait_for("sendMessage", chat_id=6)
    assert "A red square." in reply["text"]
    lines = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert (
        len(lines) == 2
        and lines[0].startswith("Update 90 set aside")
        and lines[1].startswith("Update 91 set aside")
    )
    with sqlite3.connect(state / "bot.sqlite3") as raw:
        reasons = dict(raw.execute("SELECT update_id, set_aside FROM journal WHERE update_id IN (90, 91)"))
    assert all(reasons.values())


class ThreadKillingEngine:
    """The tiny engine over a native library that gives up on its thread: SystemExit from the
    first batch, which the model thread's ``except Exception`` can't catch. The thread dies,
    and the picture in hand is left unanswered."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name):  # prepare, input_size, languages, ...
        return getattr(self.inner, name)

    def run(self, kind, prepared, tasks):
        raise SystemExit("the device library gave up")


# The thread's death is the point: pytest need not warn of it.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
async def test_a_model_thread_that_dies_turns_healthz_503_and_stops_the_bot_with_status_1(
    telegram, engine, executor, tmp_path, caplog
):
    state = tmp_path / "state"
    dying = Executor(engine_factory=lambda: ThreadKillingEngine(engine), warmup=False)
    await dying.start()
    stopping = threading.Event()
    watcher = SetOnLine("Stopping:", stopping)
    logging.getLogger("bot").addHandler(watcher)
    try:
        # Owned as python -m bot owns its executor: the runner watches its thread, and stops it.
        async with running_bot(
            telegram, state, dying, owned=True, metrics_port=0, shutdown_grace_s=0.5
        ) as runner:
            healthz = f"http://127.0.0.1:{runner.health_port}/healthz"
            assert (await asyncio.to_thread(fetch, healthz))[0] == 200
            update_id = await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
            assert await asyncio.to_thread(stopping.wait, 20), "the bot never noticed the model thread died"
            status, health = await asyncio.to_thread(fetch, healthz)
            exit_code = runner.exit_code
    finally:
        logging.getLogger("bot").removeHandler(watcher)
    assert status == 503 and "models: the model thread stopped" in health.splitlines(), health
    assert exit_code == 1
    stops = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Stopping:")]
    assert stops == [
        "Stopping: the model thread stopped. Exit status 1, for a supervisor to restart the bot."
    ]
    # The photo the thread died with is kept, and the next start answers it.
    assert telegram.count("sendMessage", 5) == 0
    assert journaled(state) == {update_id: False}
    async with running_bot(telegram, state, executor):
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(state, update_id)
    assert "A red square." in reply["text"]


class LockedAfterDescribing:
    """Once a picture is described, a backup tool locks the database until the bot gives up on
    it, and lets go at once: the database is back before the update's end."""

    def __init__(self, path) -> None:
        self.path = path
        self.release, self.locks = threading.Event(), contextlib.AsyncExitStack()

    async def __call__(self, task, described):
        await self.locks.enter_async_context(locked_database(self.path, seconds=60.0, release=self.release))
        return described


class SetOnLine(logging.Handler):
    def __init__(self, text: str, event: threading.Event) -> None:
        super().__init__()
        self.text, self.event = text, event

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.event.set()


async def test_an_update_that_met_an_unusable_database_is_not_marked_done(telegram, executor, tmp_path):
    state = tmp_path / "state"
    locking = LockedAfterDescribing(state / "bot.sqlite3")
    describer = Wrapped(executor, on_result=locking)
    watcher = SetOnLine("Stopping:", locking.release)  # the bot gave up on the database
    logging.getLogger("bot").addHandler(watcher)
    try:
        async with running_bot(telegram, state, describer, state_db_timeout_s=0.5):
            update_id = await telegram.push(
                telegram.message(-100500, user_id=12, photo=telegram.photo(pictures.jpeg("red")))
            )
            assert await asyncio.to_thread(locking.release.wait, 30)
        # The bot stopped after the update's handlers all ran, the database usable again.
        await locking.locks.aclose()
    finally:
        logging.getLogger("bot").removeHandler(watcher)
    assert telegram.count("sendMessage", -100500) == 0
    assert journaled(state) == {update_id: False}  # not answered, so not done: kept for the next start
    async with running_bot(telegram, state, executor):
        [reply] = await telegram.wait_for("sendMessage", chat_id=-100500)
        await until_handled(state, update_id)
    assert "A red square." in reply["text"]


# -- the database forgets, while the bot runs --------------------------------------------------

DAY = 24 * 3600


def kept(state, table: str, column: str) -> set:
    with contextlib.closing(sqlite3.connect(state / "bot.sqlite3", timeout=5)) as db:
        return {row[0] for row in db.execute(f"SELECT {column} FROM {table}")}


def backdate(state, sql: str, *params) -> None:
    """Write as another process would: an UPDATE or INSERT of rows from days ago."""
    with contextlib.closing(sqlite3.connect(state / "bot.sqlite3", timeout=5)) as db, db:
        db.execute(sql, params)


async def test_the_database_forgets_what_is_past_its_time_while_the_bot_runs(telegram, executor, tmp_path):
    state = tmp_path / "state"
    db = Database(state / "bot.sqlite3")
    for update_id in (9001, 9002):  # finished: their ids only
        db.journal_received(update_id, {"update_id": update_id})
        db.journal_done(update_id)
    for name in ("old", "fresh"):
        db.cache_texts(f"u-{name}", "describe", {"en": f"A square, {name}.", "es": f"Un cuadrado, {name}."})
        db.remember_reply(5, {"old": 900, "fresh": 901}[name], 5, [PictureRef(f"f-{name}", f"u-{name}")])
        db.remember_bad_file(f"u-bad-{name}", "not_a_picture")
    db.close()
    backdate(state, "UPDATE journal SET done_at = done_at - ? WHERE update_id = 9001", 8 * DAY)
    backdate(state, "UPDATE texts SET created_at = created_at - ? WHERE file_unique_id = 'u-old'", 31 * DAY)
    for table in ("reply_owner", "reply_pictures"):
        backdate(state, f"UPDATE {table} SET created_at = created_at - ? WHERE message_id = 900", 31 * DAY)
    backdate(
        state, "UPDATE bad_files SET created_at = created_at - ? WHERE file_unique_id = 'u-bad-old'", 2 * DAY
    )

    def gone() -> bool:
        replies = kept(state, "reply_owner", "message_id") | kept(state, "reply_pictures", "message_id")
        return (
            9001 not in kept(state, "journal", "update_id")
            and "u-old" not in kept(state, "texts", "file_unique_id")
            and 900 not in replies
            and "u-bad-old" not in kept(state, "bad_files", "file_unique_id")
        )

    prune_often = dataclasses.replace(FAST, prune_every_s=0.2)
    async with running_bot(telegram, state, executor, timings=prune_often):
        await until(gone, "what was past its time forgotten")
        photo = await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(state, photo)
        # Again and again, not once: an entry that is old by now goes too.
        backdate(
            state,
            "INSERT INTO journal (update_id, body, received_at, done_at) VALUES (9003, '{}', ?, ?)",
            time.time() - 9 * DAY,
            time.time() - 8 * DAY,
        )
        await until(lambda: 9003 not in kept(state, "journal", "update_id"), "a later old entry forgotten")
    assert kept(state, "journal", "update_id") == {9002, photo}
    texts = kept(state, "texts", "file_unique_id")
    assert "u-fresh" in texts and len(texts) == 2  # and the photo the bot just described
    assert len(kept(state, "reply_owner", "message_id")) == 2  # 901, and the bot's own reply
    assert 901 in kept(state, "reply_pictures", "message_id")
    assert kept(state, "bad_files", "file_unique_id") == {"u-bad-fresh"}
