"""The long description in a chat, fetched at the photo size of the model that writes it."""

from __future__ import annotations

import dataclasses

from captioning import Capabilities
from tests.support import pictures
from tests.support.bot_harness import FAST, running_bot
from tests.support.describers import Wrapped
from tests.support.fake_telegram import command


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
