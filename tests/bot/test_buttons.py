"""The buttons under a description: describe again (in more detail), and delete.

Button data comes from the client: it only names an action, and who may press is the
server's to say. Forged and garbage presses are answered and do nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from captioning import Describe
from tests.support import pictures
from tests.support.bot_harness import FAST, running_bot
from tests.support.describers import Wrapped, full_after
from tests.support.fake_telegram import command
from tests.support.waiting import until_handled

GROUP = -100888


def chat_languages(state: Path, chat_id: int) -> str | None:
    """A chat's languages as the database keeps them (None: never set)."""
    with contextlib.closing(sqlite3.connect(state / "bot.sqlite3")) as db:
        row = db.execute("SELECT languages FROM chats WHERE chat_id = ?", (chat_id,)).fetchone()
    return row[0] if row else None


ASKER, OTHER, ADMIN = 21, 22, 23


def keyboard(params) -> list[dict]:
    markup = params["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    return markup["inline_keyboard"][0]


async def test_a_description_carries_describe_again_and_delete(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    buttons = keyboard(reply)
    assert [b["text"] for b in buttons] == [
        "More detail / Más detalle",
        "Read text / Leer texto",
        "Delete / Borrar",
    ]
    assert [b["callback_data"] for b in buttons] == ["again", "read", "delete"]  # the action, nothing else


@pytest.mark.parametrize("quick_s", [0.0, 30.0])
async def test_describe_again_asks_for_a_detailed_description(telegram, executor, tmp_path, quick_s):
    describer = Wrapped(executor)
    timings = dataclasses.replace(FAST, quick_answer_s=quick_s)
    async with running_bot(telegram, tmp_path / "state", describer, timings=timings):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("green")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        press = await telegram.press(reply, photo, "again", user_id=5)
        [edit] = await telegram.wait_for("editMessageText", chat_id=5)
        await until_handled(tmp_path / "state", press)
    tasks = [keys["task"] for keys in describer.submitted]
    assert tasks == [Describe(False, ("es",)), Describe(True, ("es",))]
    assert "A green square." in edit["text"] and keyboard(edit)[0]["callback_data"] == "again"
    [answer] = telegram.sent("answerCallbackQuery")
    # A slow description gets a toast first; a quick one is simply edited in.
    assert answer.get("text") == ("Describing it again, in more detail…" if quick_s == 0 else None)


async def test_an_edit_that_changes_nothing_is_taken_in_stride(telegram, executor, tmp_path, caplog):
    # The tiny model says the same thing either way: Telegram refuses the edit ("message is
    # not modified"), and the press still ends well: answered, and nothing set aside.
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        press = await telegram.press(reply, photo, "again", user_id=5)
        await telegram.wait_for("editMessageText", chat_id=5)
        await until_handled(tmp_path / "state", press)
    assert telegram.count("answerCallbackQuery") == 1
    assert not [r for r in caplog.records if "set aside" in r.getMessage()]


async def test_delete_removes_the_bots_message(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.press(reply, photo, "delete", user_id=5)
        [deleted] = await telegram.wait_for("deleteMessage")
    assert deleted["chat_id"] == 5 and deleted["message_id"] == telegram._sent_ids[id(reply)]


async def test_a_failed_delete_still_answers_the_press(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        telegram.fail_next["deleteMessage"] = [
            {"error_code": 400, "description": "Bad Request: message can't be deleted for everyone"}
        ]
        press = await telegram.press(reply, photo, "delete", user_id=5)
        [answer] = await telegram.wait_for("answerCallbackQuery")
        await until_handled(tmp_path / "state", press)
    assert answer["text"] == "This button no longer does anything."


async def test_in_groups_only_the_asker_or_an_admin_may_press(telegram, executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(GROUP, user_id=ASKER, photo=telegram.photo(pictures.jpeg("blue")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        await telegram.press(reply, photo, "delete", user_id=OTHER)
        [refusal] = await telegram.wait_for("answerCallbackQuery")
        assert telegram.sent("deleteMessage") == []
        await telegram.press(reply, photo, "delete", user_id=ADMIN)
        await telegram.wait_for("deleteMessage")
    assert refusal["text"] == "Only the person who asked, or an admin, can use these buttons."
    assert refusal["show_alert"] is True


FORGED = ["delete", f"delete:{OTHER}", "again", f"again:{OTHER}", f"delete:{ASKER}", f"again:{ASKER}"]


@pytest.mark.parametrize("data", FORGED)
async def test_a_forged_press_deletes_and_edits_nothing(telegram, executor, tmp_path, data):
    # OTHER is no admin, and the description answers ASKER: whatever the data claims.
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(GROUP, user_id=ASKER, photo=telegram.photo(pictures.jpeg("blue")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        press = await telegram.press(reply, photo, data, user_id=OTHER)
        [answer] = await telegram.wait_for("answerCallbackQuery")
        await until_handled(tmp_path / "state", press)
    assert answer["text"] == "Only the person who asked, or an admin, can use these buttons."
    assert telegram.sent("deleteMessage") == [] and telegram.sent("editMessageText") == []
    assert telegram.count("getFile") == 1  # no second description was started


GARBAGE = [
    "",
    "again:x",
    "delete:",
    "again:1:2",
    "lang:zz",
    "lang:",
    "LANG:EN",
    "x" * 64,
    "🙂",
    "again; drop",
    "\x00",
]


async def test_garbage_button_data_is_answered_and_breaks_nothing(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("blue")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        presses = [await telegram.press(reply, photo, data, user_id=5) for data in GARBAGE]
        answers = await telegram.wait_for("answerCallbackQuery", count=len(GARBAGE))
        await until_handled(tmp_path / "state", *presses)
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("yellow"))))
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert [a.get("text") for a in answers] == ["This button no longer does anything."] * len(GARBAGE)
    assert telegram.sent("deleteMessage") == [] and telegram.sent("editMessageText") == []
    assert "A yellow square." in replies[-1]["text"]  # the bot goes on


async def test_a_press_on_a_reply_the_bot_knows_nothing_about_is_for_admins(telegram, executor, tmp_path):
    # A reply sent before the bot kept who asked (its buttons said "again:<id>"): only admins.
    telegram.members[(GROUP, ADMIN)] = "administrator"
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(GROUP, user_id=ASKER, photo=telegram.photo(pictures.jpeg("red")))
        old_reply = {"chat_id": GROUP, "text": "Automatic description, may be wrong: A red square."}
        telegram._sent_ids[id(old_reply)] = 4242
        await telegram.press(old_reply, photo, f"delete:{ASKER}", user_id=ASKER)
        [refusal] = await telegram.wait_for("answerCallbackQuery")
        await telegram.press(old_reply, photo, f"delete:{ASKER}", user_id=ADMIN)
        [deleted] = await telegram.wait_for("deleteMessage")
    assert refusal["show_alert"] is True and deleted["message_id"] == 4242


async def test_admin_answers_are_remembered_for_a_minute(telegram, executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(GROUP, user_id=ASKER, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        for _ in range(3):
            await telegram.press(reply, photo, "again", user_id=ADMIN)
        await telegram.wait_for("answerCallbackQuery", count=3)
    assert telegram.count("getChatMember") == 1


async def test_describe_again_refused_at_once_says_why_in_an_alert(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", Wrapped(executor, refuse=full_after(1))):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        press = await telegram.press(reply, photo, "again", user_id=5)
        [answer] = await telegram.wait_for("answerCallbackQuery")
        await until_handled(tmp_path / "state", press)
    assert answer["text"] == "I'm very busy right now; please press the button again in a minute."
    assert answer["show_alert"] is True
    assert telegram.sent("editMessageText") == []  # the description stays as it was


async def test_describe_again_failing_late_is_said_in_a_private_chat(telegram, executor, tmp_path):
    timings = dataclasses.replace(FAST, quick_answer_s=0.0)  # the toast goes out before the failure
    async with running_bot(
        telegram, tmp_path / "state", Wrapped(executor, refuse=full_after(1)), timings=timings
    ):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.press(reply, photo, "again", user_id=5)
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    [toast] = telegram.sent("answerCallbackQuery")
    assert toast["text"] == "Describing it again, in more detail…"
    assert replies[-1]["text"] == "I'm very busy right now; please send the picture again in a minute."
    assert telegram.sent("editMessageText") == []


async def test_describe_again_counts_against_the_presser(telegram, executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    describer = Wrapped(executor)
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = telegram.message(GROUP, user_id=ASKER, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        press = await telegram.press(reply, photo, "again", user_id=ADMIN)
        await until_handled(tmp_path / "state", press)
    assert [keys["owner"] for keys in describer.submitted] == [ASKER, ADMIN]


CHANNEL = {"id": -100777, "type": "channel", "title": "News"}


async def test_a_channel_subscriber_cant_change_the_channels_languages(telegram, executor, tmp_path):
    # The /lang menu is the channel's own post: pressing its buttons proves nothing about who
    # pressed. The presser (a subscriber, not an admin) is who asks.
    async with running_bot(telegram, tmp_path / "state", executor):
        post = {"message_id": 1, "date": 0, "chat": CHANNEL, "sender_chat": CHANNEL}
        await telegram.push({**post, "text": "/lang", "entities": command("/lang")}, kind="channel_post")
        [menu] = await telegram.wait_for("sendMessage", chat_id=CHANNEL["id"])
        press = await telegram.press(menu, None, "lang:es", user_id=OTHER, chat=CHANNEL)
        [answer] = await telegram.wait_for("answerCallbackQuery")
        await until_handled(tmp_path / "state", press)
    assert answer["text"] == "Only this group's admins can change that." and answer["show_alert"] is True
    assert telegram.sent("editMessageReplyMarkup") == []
    assert chat_languages(tmp_path / "state", CHANNEL["id"]) is None  # unchanged: the default


async def test_a_language_press_works_only_on_the_lang_menu(telegram, executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(GROUP, user_id=ADMIN, photo=telegram.photo(pictures.jpeg("blue")))
        await telegram.push(photo)
        [description] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        press = await telegram.press(description, photo, "lang:es", user_id=ADMIN)  # forged
        [answer] = await telegram.wait_for("answerCallbackQuery")
        await until_handled(tmp_path / "state", press)
    assert answer["text"] == "This button no longer does anything."
    assert chat_languages(tmp_path / "state", GROUP) is None
