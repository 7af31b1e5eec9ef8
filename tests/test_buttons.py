"""The buttons under a description: describe again (in more detail), and delete."""

from __future__ import annotations

import json

import pytest

from bot import handlers
from tests import pictures
from tests.bot_harness import RecordingDescriber, running_bot

GROUP = -100888
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
    assert [b["text"] for b in buttons] == ["Describe again / Describir de nuevo", "Delete / Borrar"]
    assert [b["callback_data"] for b in buttons] == ["again:5", "delete:5"]


@pytest.mark.parametrize("quick_s", [0.0, 30.0])
async def test_describe_again_edits_in_a_detailed_description(
    telegram, executor, tmp_path, monkeypatch, quick_s
):
    monkeypatch.setattr(handlers, "QUICK_ANSWER_S", quick_s)
    describer = RecordingDescriber(executor)
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("green")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.press(reply, photo, "again:5", user_id=5)
        [edit] = await telegram.wait_for("editMessageText", chat_id=5)
    assert [keys.get("detailed", False) for keys in describer.submitted] == [
        False,
        True,
    ]  # the second time with beam search, longer
    assert "A green square." in edit["text"] and keyboard(edit)[0]["callback_data"] == "again:5"
    [answer] = telegram.sent("answerCallbackQuery")
    # A slow description gets a toast first; a quick one is simply edited in.
    assert answer.get("text") == ("Describing it again, in more detail…" if quick_s == 0 else None)


async def test_delete_removes_the_bots_message(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.press(reply, photo, "delete:5", user_id=5)
        [deleted] = await telegram.wait_for("deleteMessage")
    assert deleted["chat_id"] == 5 and deleted["message_id"] == telegram._sent_ids[id(reply)]


async def test_in_groups_only_the_asker_or_an_admin_may_press(telegram, executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(GROUP, user_id=ASKER, photo=telegram.photo(pictures.jpeg("blue")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        await telegram.press(reply, photo, f"delete:{ASKER}", user_id=OTHER)
        [refusal] = await telegram.wait_for("answerCallbackQuery")
        assert telegram.sent("deleteMessage") == []
        await telegram.press(reply, photo, f"delete:{ASKER}", user_id=ADMIN)
        await telegram.wait_for("deleteMessage")
    assert refusal["text"] == "Only the person who asked, or an admin, can use these buttons."
    assert refusal["show_alert"] is True


async def test_describe_again_refused_at_once_says_why_in_an_alert(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", RecordingDescriber(executor, full_after=1)):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.press(reply, photo, "again:5", user_id=5)
        [answer] = await telegram.wait_for("answerCallbackQuery")
        await telegram.settle(0.3)
    assert answer["text"] == "I'm very busy right now; please press the button again in a minute."
    assert answer["show_alert"] is True
    assert telegram.sent("editMessageText") == []  # the description stays as it was


async def test_describe_again_failing_late_is_said_in_a_private_chat(
    telegram, executor, tmp_path, monkeypatch
):
    monkeypatch.setattr(handlers, "QUICK_ANSWER_S", 0.0)  # the toast goes out before the failure
    async with running_bot(telegram, tmp_path / "state", RecordingDescriber(executor, full_after=1)):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        await telegram.wait_for("sendMessage", chat_id=5)
        [reply] = telegram.sent("sendMessage", chat_id=5)
        await telegram.press(reply, photo, "again:5", user_id=5)
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    [toast] = telegram.sent("answerCallbackQuery")
    assert toast["text"] == "Describing it again, in more detail…"
    assert replies[-1]["text"] == "I'm very busy right now; please send the picture again in a minute."
    assert telegram.sent("editMessageText") == []
