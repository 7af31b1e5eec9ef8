"""What the bot keeps, and for how long: the state folder is this account's alone, text read
from pictures goes after READ_TEXT_KEPT_HOURS, and /forget deletes a chat's everything."""

from __future__ import annotations

import stat

from bot.store import Database
from bot.store import database as store_module
from tests.support import pictures
from tests.support.bot_harness import running_bot
from tests.support.fake_telegram import command

GROUP, ADMIN, MEMBER = -100555, 11, 12
DONE = "Done: I deleted this chat's settings, what I kept about its pictures (1: "
FORGET = {"text": "/forget", "entities": command("/forget")}


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_state_folder_and_the_database_are_this_accounts_alone(tmp_path):
    state = tmp_path / "state"
    database = Database(state / "bot.sqlite3")
    database.cache_texts("u", "read", {"": "Dear Ana, your results..."})
    assert mode(state) == 0o700
    assert {p.name: mode(p) for p in state.iterdir()} == {
        "bot.sqlite3": 0o600,
        "bot.sqlite3-wal": 0o600,
        "bot.sqlite3-shm": 0o600,
    }
    database.close()


def test_a_database_an_older_version_left_readable_by_all_is_tightened(tmp_path):
    state = tmp_path / "state"
    Database(state / "bot.sqlite3").close()
    state.chmod(0o755)
    (state / "bot.sqlite3").chmod(0o644)
    Database(state / "bot.sqlite3").close()
    assert (mode(state), mode(state / "bot.sqlite3")) == (0o700, 0o600)


def test_text_read_from_pictures_goes_after_its_hours_descriptions_stay(tmp_path, monkeypatch):
    database = Database(tmp_path / "bot.sqlite3")
    start = store_module.time.time()
    database.cache_texts("u", "read", {"": "Dear Ana, your results..."})
    database.cache_texts("u", "translate", {"es": "Querida Ana..."})
    database.cache_texts("u", "describe", {"en": "a letter"})
    monkeypatch.setattr(store_module.time, "time", lambda: start + 2 * 3600)
    assert database.prune(read_text_kept_s=3 * 3600)["texts"] == 0
    monkeypatch.setattr(store_module.time, "time", lambda: start + 4 * 3600)
    assert database.prune(read_text_kept_s=3 * 3600)["texts"] == 2
    assert database.cached_texts("u", "read") == database.cached_texts("u", "translate") == {}
    assert database.cached_texts("u", "describe") == {"en": "a letter"}
    database.close()


async def test_forget_deletes_what_is_kept_about_a_private_chat_and_says_so(telegram, executor, tmp_path):
    state = tmp_path / "state"
    async with running_bot(telegram, state, executor):
        await telegram.push(telegram.message(6, text="/lang es", entities=command("/lang es")))
        await telegram.wait_for("sendMessage", chat_id=6)
        for chat in (5, 6):
            await telegram.push(telegram.message(chat, photo=telegram.photo(pictures.jpeg("red"))))
            await telegram.wait_for("sendMessage", count=2 if chat == 6 else 1, chat_id=chat)
        description = telegram.sent("sendMessage", chat_id=5)[-1]
        await telegram.push(telegram.message(5, text="/forget", entities=command("/forget")))
        [_, done] = await telegram.wait_for("sendMessage", count=2, chat_id=5)
        await telegram.push(
            telegram.message(5, text="what color is it?", reply_to_message=telegram.bot_message(description))
        )
        [*_, unknown] = await telegram.wait_for("sendMessage", count=3, chat_id=5)
        await telegram.push(telegram.message(5, text="/forget", entities=command("/forget")))
        [*_, nothing] = await telegram.wait_for("sendMessage", count=4, chat_id=5)
    assert done["text"].startswith(DONE)
    assert unknown["text"].startswith("To ask about a photo, reply to the photo or to my description")
    assert nothing["text"] == "I keep nothing about this chat."
    database = Database(state / "bot.sqlite3")
    assert database.chat_settings(6).languages == ("es",)  # another chat's are its own
    assert database.pictures_of(6, telegram.message_id_of(telegram.sent("sendMessage", chat_id=6)[-1]))
    database.close()


async def test_in_a_group_only_an_admin_may_forget(telegram, executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.photo(pictures.jpeg("red"))
        await telegram.push(telegram.message(GROUP, user_id=MEMBER, photo=photo))
        await telegram.wait_for("sendMessage", chat_id=GROUP)
        await telegram.push(telegram.message(GROUP, user_id=MEMBER, **FORGET))
        [_, refused] = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
        await telegram.push(telegram.message(GROUP, user_id=ADMIN, **FORGET))
        [*_, done] = await telegram.wait_for("sendMessage", count=3, chat_id=GROUP)
    assert refused["text"] == "Only this group's admins can change that."
    assert done["text"].startswith(DONE)
