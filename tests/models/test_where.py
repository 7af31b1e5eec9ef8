"""Where things are, from Florence-2's <OD>: the tiny locator's shapes, said by column."""

from __future__ import annotations

import pytest

from captioning import Engine
from captioning.models import load_adapter
from captioning.tasks import Locate, Translated
from tests.support.tiny_locator import LAYOUTS, layout

pytestmark = pytest.mark.xdist_group("locator")


@pytest.fixture(scope="module")
def locating(engine, tiny_locator_dir):
    """The tiny engine's captioner and translators, with the locator as its Florence-2."""
    locator = load_adapter("reading", str(tiny_locator_dir), engine.settings, engine.device, engine.dtype)
    return Engine([*engine.models[:1], locator], engine.settings, translations=engine.translations)


def test_where_things_are_in_words_by_column(locating):
    words = list(LAYOUTS)
    results = locating.run("where", [layout(w) for w in words], [Locate(())] * len(words))
    assert results == [Translated(w) for w in words]


def test_a_batch_says_what_each_picture_alone_does(locating):
    words = list(LAYOUTS)[::-1]
    batch = locating.run("where", [layout(w) for w in words], [Locate(())] * len(words))
    assert batch == [locating.run("where", [layout(w)], [Locate(())])[0] for w in words]


def test_where_is_offered_only_by_a_model_that_can_say_it(locating, engine):
    assert locating.capabilities.can("where") and locating.capabilities.input_size("where") == 64
    assert not engine.capabilities.can("where")  # the tiny reader's processor parses no boxes
