"""Each update is handled at most once: Telegram hands an update out again until a later
getUpdates confirms it, and re-posts a webhook update whose 200 came late."""

from __future__ import annotations

import logging

from bot.settings import Timings
from bot.store import Database, Store
from bot.updates.journal import Journal
from tests.support import pictures
from tests.support.bot_harness import running_bot
from tests.support.waiting import until, until_handled


async def test_the_journal_says_a_repeated_delivery_is_not_new(tmp_path):
    store = Store.in_folder(tmp_path)
    await store.open()
    journal = Journal(store, Timings())
    raw = {"update_id": 7, "message": {"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}}}
    try:
        first = await journal.received(raw)
        again = await journal.received(raw)  # the webhook's 200 came late: Telegram posts it again
        await store.journal_done(7)
        after = await journal.received(raw)  # answered, and delivered once more
    finally:
        await store.close()
    assert first is not None and first.update_id == 7
    assert again is None
    assert after is None


async def test_an_update_pending_in_the_journal_and_still_at_telegram_is_answered_once(
    telegram, executor, tmp_path
):
    # Journaled, then a crash before Telegram heard it arrived: the restart replays it, and
    # Telegram hands it out again.
    state = tmp_path / "state"
    message = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
    update_id = await telegram.push(message)
    db = Database(state / "bot.sqlite3")
    db.journal_received(update_id, {"update_id": update_id, "message": message})
    db.close()
    async with running_bot(telegram, state, executor):
        await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(state, update_id)
        await until(lambda: telegram.confirmed_offset > update_id, "Telegram told it arrived")
        await telegram.settle(0.5)
    assert telegram.count("sendMessage", 5) == 1


async def test_an_update_answered_before_and_delivered_again_is_not_answered_again(
    telegram, executor, tmp_path
):
    # Answered, then the last confirm was lost (Poller.stop's getUpdates failed): Telegram
    # hands it out again at the next start.
    state = tmp_path / "state"
    message = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
    update_id = await telegram.push(message)
    db = Database(state / "bot.sqlite3")
    db.journal_received(update_id, {"update_id": update_id, "message": message})
    db.journal_done(update_id)
    db.close()
    async with running_bot(telegram, state, executor):
        await until(lambda: telegram.confirmed_offset > update_id, "Telegram told it arrived")
        await telegram.settle(0.5)
    assert telegram.count("sendMessage", 5) == 0


async def test_a_stop_whose_last_confirm_is_refused_says_so_and_leaves_the_updates_at_telegram(
    telegram, executor, tmp_path, caplog
):
    # Poller.stop tells Telegram once more which updates arrived; when that fails too, the
    # bot still stops, and says so: Telegram hands them out again to the next start (above).
    caplog.set_level(logging.INFO, logger="bot.updates.intake")
    state = tmp_path / "state"
    telegram.refuse_confirms = True
    update_id = await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
    async with running_bot(telegram, state, executor):
        await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(state, update_id)
    assert telegram.confirmed_offset <= update_id
    assert [r.getMessage() for r in caplog.records if "Couldn't confirm the last updates" in r.getMessage()]
