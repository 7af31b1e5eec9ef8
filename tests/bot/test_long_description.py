"""The long description in a chat: /detail long beside BLIP-2 gives Florence-2's paragraph
(the tiny locator's), fetched at the photo size of the model that writes it."""

from __future__ import annotations

import dataclasses

import pytest

from captioning import Capabilities, Engine
from captioning.models import load_adapter
from tests.support import pictures
from tests.support.bot_harness import FAST, running_bot, started_executor
from tests.support.describers import Wrapped
from tests.support.fake_telegram import command
from tests.support.tiny_locator import PARAGRAPHS, layout

pytestmark = pytest.mark.xdist_group("locator")

TWO = "On the left: a square. On the right: a circle."


@pytest.fixture
async def beside_blip2(engine, tiny_locator_dir):
    """The real executor over the tiny BLIP-2 and translators, with the locator as Florence-2."""
    settings = engine.settings.with_overrides(ocr_detailed_task="<MORE_DETAILED_CAPTION>")
    florence = load_adapter("reading", str(tiny_locator_dir), settings, engine.device, engine.dtype)
    executor = await started_executor(
        Engine([engine.models[0], florence], settings, translations=engine.translations)
    )
    yield executor
    await executor.stop()


async def test_detail_long_beside_blip2_gives_florences_paragraph(telegram, beside_blip2, tmp_path):
    async with running_bot(telegram, tmp_path / "state", beside_blip2):
        await telegram.push(telegram.message(5, text="/detail long", entities=command("/detail long")))
        await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.encode(layout(TWO), "PNG"))))
        [_, description] = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    english, spanish = PARAGRAPHS[TWO]
    assert description["text"] == (
        "Automatic description, may be wrong / Descripción automática, puede fallar\n"
        f"English: {english}\nEspañol: {spanish}"
    )


class Sized(Wrapped):
    """The real executor, saying its models look at pictures of these sizes."""

    def __init__(self, inner, **sizes: int) -> None:
        super().__init__(inner)
        self.sized = dataclasses.replace(inner.capabilities, sizes={**inner.capabilities.sizes, **sizes})

    @property
    def capabilities(self) -> Capabilities:
        return self.sized


async def test_a_long_description_is_fetched_at_the_size_its_model_looks_at(telegram, executor, tmp_path):
    # The short description's model looks at 64 px, the long one's at 320 (Florence-2: 768).
    describer = Sized(executor, describe_detailed=320)
    albums = dataclasses.replace(FAST, album_quiet_s=2.0)
    short = telegram.message(6, photo=telegram.photo(pictures.jpeg("red")))
    long = telegram.message(5, photo=telegram.photo(pictures.jpeg("blue")))
    album = [
        telegram.message(5, media_group_id="a", photo=telegram.photo(pictures.jpeg(c)))
        for c in ("red", "green")
    ]
    async with running_bot(telegram, tmp_path / "state", describer, timings=albums):
        await telegram.push(telegram.message(5, text="/detail long", entities=command("/detail long")))
        await telegram.wait_for("sendMessage", chat_id=5)
        for message in (short, long, *album):
            await telegram.push(message)
        await telegram.wait_for("sendMessage", chat_id=6)
        await telegram.wait_for("sendMessage", count=3, chat_id=5)
    fetched = sorted(call["file_id"] for call in telegram.sent("getFile"))
    sizes = [m["photo"][1]["file_id"] for m in (long, *album)] + [short["photo"][0]["file_id"]]
    assert fetched == sorted(sizes)  # 320 px for the long descriptions, 90 for the short one
