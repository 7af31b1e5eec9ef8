"""Where things are: "Where things are" under a description and /where, on the tiny locator."""

from __future__ import annotations

import pytest

from captioning import Engine
from captioning.models import load_adapter
from tests.support import pictures
from tests.support.bot_harness import running_bot, started_executor
from tests.support.fake_telegram import command
from tests.support.tiny_locator import layout

pytestmark = pytest.mark.xdist_group("locator")

TWO = "On the left: a square. On the right: a circle."


@pytest.fixture
async def locating(engine, tiny_locator_dir):
    """The real executor over the tiny engine, with the locator as its Florence-2."""
    locator = load_adapter("reading", str(tiny_locator_dir), engine.settings, engine.device, engine.dtype)
    executor = await started_executor(
        Engine([*engine.models[:1], locator], engine.settings, translations=engine.translations)
    )
    yield executor
    await executor.stop()


def keyboard(sent) -> list[str]:
    return [button["callback_data"] for row in sent["reply_markup"]["inline_keyboard"] for button in row]


async def test_where_things_are_under_a_description_and_by_command(telegram, locating, tmp_path):
    async with running_bot(telegram, tmp_path / "state", locating):
        await telegram.push(telegram.message(5, text="/lang en", entities=command("/lang en")))
        await telegram.wait_for("sendMessage", chat_id=5)
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(layout(TWO), "PNG")))
        await telegram.push(photo)
        [_, description] = await telegram.wait_for("sendMessage", count=2, chat_id=5)
        assert keyboard(description) == ["again", "read", "where", "delete"]
        await telegram.press(description, photo, "where", user_id=5)
        [*_, pressed] = await telegram.wait_for("sendMessage", count=3, chat_id=5)
        middle = telegram.message(
            5, photo=telegram.photo(pictures.encode(layout("In the middle: a circle."), "PNG"))
        )
        await telegram.push(middle)
        await telegram.wait_for("sendMessage", count=4, chat_id=5)
        again = {"text": "/where", "entities": command("/where"), "reply_to_message": middle}
        for _ in range(2):  # the second time, a pointer to the first answer
            await telegram.push(telegram.message(5, **again))
        [*_, asked, pointer] = await telegram.wait_for("sendMessage", count=6, chat_id=5)
    assert pressed["text"] == f"Where things are (automatic): {TWO}"
    assert pressed["reply_parameters"]["message_id"] == photo["message_id"]
    assert asked["text"] == "Where things are (automatic): In the middle: a circle."
    assert asked["reply_parameters"]["message_id"] == middle["message_id"]
    assert pointer["text"] == "I said where things are in it just above."
    assert pointer["reply_parameters"]["message_id"] == telegram.message_id_of(asked)


async def test_nothing_to_place_is_said_plainly_and_where_needs_a_photo(telegram, locating, tmp_path):
    async with running_bot(telegram, tmp_path / "state", locating):
        blank = telegram.message(5, language="es", photo=telegram.photo(pictures.encode(layout(""), "PNG")))
        await telegram.push(blank)
        await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.push(
            telegram.message(
                5, language="es", text="/donde", entities=command("/donde"), reply_to_message=blank
            )
        )
        [_, nothing] = await telegram.wait_for("sendMessage", count=2, chat_id=5)
        await telegram.push(telegram.message(5, text="/where", entities=command("/where")))
        [*_, usage] = await telegram.wait_for("sendMessage", count=3, chat_id=5)
    assert nothing["text"] == "No encontré nada que situar en esta imagen."
    assert usage["text"] == "Reply to a photo with /where and I'll say where things are in it."


async def test_where_without_a_model_that_says_it_is_one_line(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(
            telegram.message(5, text="/where", entities=command("/where"), reply_to_message=photo)
        )
        [off] = await telegram.wait_for("sendMessage", chat_id=5)
    assert (
        off["text"] == "Saying where things are needs the reading model (OCR_MODEL), which isn't loaded here."
    )
