"""The long description ("More detail", /detail long): beside BLIP-2, Florence-2's
<MORE_DETAILED_CAPTION> paragraph (the tiny locator's, tests.support.tiny_locator); a chat
model's own."""

from __future__ import annotations

import json

import pytest
import torch

from captioning import Describe, Engine, EngineSettings, Translated
from captioning.__main__ import main
from captioning.models import load_adapter
from captioning.translation.texts import Translations
from tests.support import pictures
from tests.support.tiny_chat import chat_detailed_for
from tests.support.tiny_locator import LAYOUTS, PARAGRAPHS, layout
from tests.support.tiny_models import chat_translation_for, square

pytestmark = pytest.mark.xdist_group("locator")

DETAILED = "<MORE_DETAILED_CAPTION>"


def florence(engine: Engine, folder, task: str = DETAILED):
    settings = engine.settings.with_overrides(ocr_detailed_task=task)
    return load_adapter("reading", str(folder), settings, engine.device, engine.dtype)


@pytest.fixture(scope="module")
def beside_blip2(engine, tiny_locator_dir) -> Engine:
    """The tiny engine's BLIP-2 and translators, with the locator as its Florence-2."""
    return Engine(
        [engine.models[0], florence(engine, tiny_locator_dir)],
        engine.settings,
        translations=engine.translations,
    )


def test_beside_blip2_the_long_description_is_florences_paragraph_then_in_spanish(beside_blip2):
    words = list(LAYOUTS)
    got = beside_blip2.describe([layout(w) for w in words], detailed=True)
    assert got == [Translated(PARAGRAPHS[w][0], {"es": PARAGRAPHS[w][1]}) for w in words]


def test_beside_florence_the_short_description_and_answers_are_still_blip2s(beside_blip2):
    assert beside_blip2.describe([square("red")]) == [Translated("a red square", {"es": "un cuadrado rojo"})]
    [answer] = beside_blip2.answer([square("blue")], ["what color is it?"])
    assert answer == Translated("blue", {"es": "azul"})


def test_a_batch_of_long_descriptions_says_what_each_picture_alone_does(beside_blip2):
    words = list(LAYOUTS)[::-1]
    batch = beside_blip2.describe([layout(w) for w in words], detailed=True, languages=())
    assert batch == [beside_blip2.describe([layout(w)], detailed=True, languages=())[0] for w in words]


def test_the_long_description_is_prepared_for_the_model_that_writes_it(beside_blip2):
    blip2, reader = beside_blip2.models
    assert beside_blip2.routes["describe"] is blip2 and beside_blip2.routes["describe_detailed"] is reader
    assert beside_blip2.capabilities.input_size("describe_detailed") == reader.input_size
    data = pictures.encode(layout("In the middle: a circle."), "PNG")
    prepared = beside_blip2.prepare(data, Describe(detailed=True)).pixel_values
    assert torch.equal(
        prepared, reader.prepare(layout("In the middle: a circle."))
    )  # Florence-2's normalisation
    assert not torch.equal(prepared, blip2.prepare(layout("In the middle: a circle.")))


def test_with_ocr_detailed_task_empty_blip2_writes_the_long_description(engine, tiny_locator_dir):
    beside = Engine([engine.models[0], florence(engine, tiny_locator_dir, "")], engine.settings)
    assert beside.routes["describe_detailed"] is engine.models[0]
    assert beside.describe([square("red")], detailed=True, languages=()) == [Translated("a red square")]


def test_a_chat_model_writes_its_own_long_description_beside_florence(tiny_model_dirs, tiny_locator_dir):
    chat = Engine.load(EngineSettings.from_env({**tiny_model_dirs.env(chat=True), "DEVICE": "cpu"}))
    beside = Engine(
        [chat.models[0], florence(chat, tiny_locator_dir)], chat.settings, translations=chat.translations
    )
    assert beside.routes["describe_detailed"] is chat.models[0]
    [got] = beside.describe([square("green")], detailed=True)
    assert got == Translated(chat_detailed_for("green"), {"es": chat_translation_for("green", detailed=True)})


def test_an_engine_loaded_to_read_only_writes_no_long_description(engine_settings, tiny_locator_dir):
    settings = engine_settings.with_overrides(ocr_model=str(tiny_locator_dir), ocr_detailed_task=DETAILED)
    reader = Engine.load(settings, describing=False)
    assert reader.capabilities.kinds == ("read", "where", "translate")


def test_the_cli_writes_florences_paragraph_with_detailed_beside_blip2(
    tmp_path, model_env, tiny_locator_dir, monkeypatch, capsys
):
    monkeypatch.setenv("OCR_MODEL", str(tiny_locator_dir))
    monkeypatch.setenv("OCR_DETAILED_TASK", DETAILED)
    words = "On the left: 2 squares. On the right: a circle."
    path = tmp_path / "shapes.png"
    path.write_bytes(pictures.encode(layout(words), "PNG"))
    assert main(["--detailed", "--json", str(path)]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    english, spanish = PARAGRAPHS[words]
    assert entry["detailed"] == {"english": english, "translations": {"es": spanish}}


class Recording:
    """A real translator that notes each batch it is given."""

    def __init__(self, inner) -> None:
        self.inner, self.batches = inner, []

    def translate(self, texts):
        self.batches.append(list(texts))
        return self.inner.translate(texts)


def test_a_long_description_goes_to_marian_a_sentence_at_a_time(beside_blip2):
    # Marian writes at most TRANSLATION_MAX_NEW_TOKENS: a paragraph given whole would be cut short.
    spanish = Recording(beside_blip2.translations.translators["es"])
    pieces = Translations({"es": spanish}, max_new_tokens=25)  # pieces of at most 50 characters
    engine = Engine(beside_blip2.models, beside_blip2.settings, translations=pieces)
    two, blank = "On the left: a square. On the right: a circle.", ""
    long, short = engine.describe([layout(two), layout(blank)], detailed=True)
    assert (long.english, short.english) == (PARAGRAPHS[two][0], PARAGRAPHS[blank][0])
    assert spanish.batches == [  # in one batch
        ["A square and a circle on a grey background.", "The square is on the left.", PARAGRAPHS[blank][0]]
    ]
    assert short.translations == {"es": PARAGRAPHS[blank][1]}


def test_a_paragraph_cut_by_its_token_limit_ends_at_its_last_whole_sentence(engine, tiny_locator_dir):
    """DETAILED_MAX_NEW_TOKENS reached mid-sentence: the half sentence is dropped, not read out."""
    words = "In the middle: a circle."
    first, rest = PARAGRAPHS[words][0].split(". ", 1)
    reader = florence(engine, tiny_locator_dir)
    tokens = len(reader.processor.tokenizer(first + ". " + rest.split()[0]).input_ids)
    settings = engine.settings.with_overrides(ocr_detailed_task=DETAILED, detailed_max_new_tokens=tokens)
    cut = load_adapter("reading", str(tiny_locator_dir), settings, engine.device, engine.dtype)
    beside = Engine([engine.models[0], cut], settings, translations=engine.translations)
    [got] = beside.describe([layout(words)], detailed=True, languages=())
    assert got == Translated(first + ".")
