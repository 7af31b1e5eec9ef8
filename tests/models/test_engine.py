"""The engine, through its real loading code, on models trained to known captions."""

from __future__ import annotations

import logging

import pytest
import torch

from captioning import (
    Engine,
    InvalidImage,
    ModelLoadError,
    SettingsError,
    Translate,
    Translated,
    clean_text,
)
from captioning.translation.texts import Translations
from tests.support import pictures
from tests.support.tiny_models import COLORS, caption_for, square, translation_for
from tests.support.tiny_reader import sign


def R(english: str, spanish: str) -> Translated:
    return Translated(english, {"es": spanish})


def test_a_red_picture_is_a_red_square_in_both_languages(engine):
    assert engine.describe([square("red")]) == [R("a red square", "un cuadrado rojo")]


def test_a_batch_comes_back_in_input_order(engine):
    order = ["blue", "red", "yellow", "green", "white", "red", "blue"]
    got = engine.describe([square(c) for c in order])
    assert got == [R(caption_for(c), translation_for(c)) for c in order]


def test_batched_and_one_at_a_time_agree(engine):
    order = list(COLORS)
    one_by_one = [engine.describe([square(c)])[0] for c in order]
    assert engine.describe([square(c) for c in order]) == one_by_one


def test_caption_runs_one_generate_over_the_whole_batch(engine, monkeypatch):
    calls = []
    original = engine.routes["describe"].model.generate

    def counting_generate(*args, **kwargs):
        calls.append(kwargs["pixel_values"].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(engine.routes["describe"].model, "generate", counting_generate)
    engine.describe([square(c) for c in ["red", "green", "blue"]])
    assert calls == [3]


def test_prepare_decodes_bytes_and_is_pure_cpu_work(engine):
    prepared = engine.prepare(pictures.jpeg("blue"))
    assert prepared.pixel_values.device.type == "cpu"
    assert prepared.pixel_values.shape == (
        3,
        engine.capabilities.input_size("describe"),
        engine.capabilities.input_size("describe"),
    )
    assert engine.describe([prepared]) == [R("a blue square", "un cuadrado azul")]


def test_prepare_rejects_bad_bytes_with_a_sentence(engine):
    with pytest.raises(InvalidImage, match="PDF"):
        engine.prepare(pictures.pdf())


def test_an_empty_batch_is_an_empty_answer(engine):
    assert engine.describe([]) == []
    assert engine.translations.translate([], []) == []


def test_an_empty_caption_is_not_sent_to_the_translator(engine):
    assert engine.translations.translate(["", "a red square", ""], [("es",)] * 3) == [
        {},
        {"es": "un cuadrado rojo"},
        {},
    ]


def test_only_the_languages_asked_for_are_translated(engine):
    assert engine.describe([square("red")], languages=()) == [Translated("a red square", {})]
    assert engine.translations.translate(["a red square", "a blue square"], [(), ("es",)]) == [
        {},
        {"es": "un cuadrado azul"},
    ]


class RecordingTranslator:
    """A real translator that notes each batch it is given."""

    def __init__(self, inner) -> None:
        self.inner, self.batches = inner, []

    def translate(self, texts):
        self.batches.append(list(texts))
        return self.inner.translate(texts)


def test_a_text_read_is_translated_line_by_line_keeping_its_lines(engine):
    menu = "a red square\nred\n\na blue square\nyes"
    [result] = engine.run("translate", [None], [Translate(menu, ("es",))])
    assert result == Translated(menu, {"es": "un cuadrado rojo\nrojo\n\nun cuadrado azul\nsí"})


def test_the_lines_of_every_text_go_to_the_translator_in_one_batch(engine):
    spanish = RecordingTranslator(engine.translations.translators["es"])
    recorded = Engine(engine.models, engine.settings, translations=Translations({"es": spanish}))
    tasks = [Translate("a red square\n\nyes"), Translate("  \n"), Translate("blue\na white square")]
    results = recorded.run("translate", [None] * 3, tasks)
    assert spanish.batches == [["a red square", "yes", "blue", "a white square"]]
    assert [r.translations for r in results] == [
        {"es": "un cuadrado rojo\n\nsí"},
        {},  # nothing to translate
        {"es": "azul\nun cuadrado blanco"},
    ]


def test_a_long_page_goes_to_the_translator_in_batches_of_bounded_size(engine):
    from captioning.translation.texts import MAX_TRANSLATION_ROWS

    spanish = RecordingTranslator(engine.translations.translators["es"])
    recorded = Engine(engine.models, engine.settings, translations=Translations({"es": spanish}))
    lines = ["a red square", "yes"] * MAX_TRANSLATION_ROWS  # twice the most in one batch
    [result] = recorded.run("translate", [None], [Translate("\n".join(lines))])
    assert [len(b) for b in spanish.batches] == [MAX_TRANSLATION_ROWS, MAX_TRANSLATION_ROWS]
    assert result.translations["es"] == "\n".join(["un cuadrado rojo", "sí"] * MAX_TRANSLATION_ROWS)


def test_wrapped_prose_is_translated_a_sentence_at_a_time_and_a_menu_a_line_at_a_time():
    from captioning.translation.texts import text_lines

    letter = "Dear neighbours, the water will be turned off on\nMonday morning for repairs.\nThank you."
    assert text_lines(letter) == [
        "Dear neighbours, the water will be turned off on Monday morning for repairs.",
        "Thank you.",
    ]
    menu = "SOUP OF THE DAY 4.50\nGREEN SALAD 6.00\n\nCOFFEE 2.00"
    assert text_lines(menu) == menu.split("\n")
    # A paragraph ends at a blank line, or at a line that ends a sentence.
    two = "This long line of a letter wraps onto the next line and\ngoes on.\n\nA new one."
    assert text_lines(two) == [
        "This long line of a letter wraps onto the next line and goes on.",
        "",
        "A new one.",
    ]


def test_a_long_line_is_translated_a_sentence_at_a_time(engine):
    line = "a red square. a blue square. " * 20  # far beyond what Marian gives back in one go
    [result] = engine.run("translate", [None], [Translate(line, ("es",))])
    assert result.translations["es"] == " ".join(["un cuadrado rojo. un cuadrado azul."] * 20)


def test_an_overlong_line_is_cut_at_sentence_ends_then_between_words():
    from captioning.translation.texts import translation_pieces

    assert translation_pieces("Soup. Salad! Bread?", 100) == ["Soup. Salad! Bread?"]
    assert translation_pieces("Soup of the day. Salad! Bread? Yes", 12) == [
        "Soup of the",
        "day.",
        "Salad!",
        "Bread?",
        "Yes",
    ]
    assert all(len(p) <= 10 for p in translation_pieces("x" * 25 + " " + "word " * 9, 10))


def test_an_engine_loaded_to_read_only_reads_and_says_it_cant_describe(engine_settings, tmp_path):
    nowhere = str(tmp_path / "not-downloaded")  # neither BLIP-2 nor Marian is loaded
    settings = engine_settings.with_overrides(caption_model=nowhere, translation_models=f"es={nowhere}")
    reader = Engine.load(settings, describing=False)
    assert reader.capabilities.can("read") and not reader.capabilities.can("describe")
    assert "read" in reader.capabilities.kinds and "describe" not in reader.capabilities.kinds
    assert reader.warm_up() > 0
    assert reader.read([sign("STOP")]) == ["STOP"]
    with pytest.raises(SettingsError, match="CAPTION_MODEL"):
        reader.describe([square("red")])
    with pytest.raises(SettingsError, match="CAPTION_MODEL"):
        reader.prepare(pictures.jpeg("red"))


def test_an_engine_that_would_do_nothing_is_refused(engine_settings):
    with pytest.raises(SettingsError, match="OCR_MODEL"):
        Engine.load(engine_settings.with_overrides(ocr_model=""), describing=False)


def test_a_task_kind_the_engine_doesnt_know_is_a_clear_error(engine):
    with pytest.raises(ValueError, match="can't do 'paint'"):
        engine.run("paint", [square("red")], [None])


def test_describe_again_generates_with_the_detailed_settings(engine_settings, monkeypatch):
    # The tiny model says the same either way: what proves "more detail" is what generate is given.
    engine = Engine.load(engine_settings.with_overrides(detailed_max_new_tokens=44, detailed_num_beams=3))
    seen = []
    generate = engine.routes["describe"].model.generate

    def recording_generate(*args, **kwargs):
        config = kwargs["generation_config"]
        seen.append((config.max_new_tokens, config.num_beams))
        return generate(*args, **kwargs)

    monkeypatch.setattr(engine.routes["describe"].model, "generate", recording_generate)
    engine.describe([square("red")])
    engine.describe([square("red")], detailed=True)
    assert seen == [(30, 1), (44, 3)]


def test_clean_text_makes_one_tidy_line():
    assert clean_text("  a red\nsquare \t") == "a red square"


def test_the_input_size_comes_from_the_processor(engine):
    assert (
        engine.capabilities.input_size("describe") == 64
    )  # the tiny model's vision tower; 224 for the hub models


def test_the_batch_size_is_the_cpus_unless_set(engine, engine_settings):
    assert engine.batch_size == 8  # float32 on the CPU (the engine loaded from engine_settings)
    assert Engine.load(engine_settings.with_overrides(max_batch_size=3)).batch_size == 3


def test_loading_logs_the_device_and_dtype_once(engine_settings, caplog):
    with caplog.at_level(logging.INFO, logger="captioning"):
        loaded = Engine.load(engine_settings)
    lines = [r.getMessage() for r in caplog.records if "loaded on" in r.getMessage()]
    assert lines == [lines[0]] and "cpu" in lines[0] and "float32" in lines[0]
    assert loaded.dtype == torch.float32


def test_bfloat16_on_the_cpu_still_captions(engine_settings):
    engine = Engine.load(engine_settings.with_overrides(dtype="bfloat16"))
    assert engine.routes["describe"].model.dtype == torch.bfloat16
    assert engine.describe([square("red")])[0].english == "a red square"


def test_a_missing_model_is_one_clear_error(engine_settings, tmp_path):
    settings = engine_settings.with_overrides(caption_model=str(tmp_path / "no-such-model"))
    with pytest.raises(ModelLoadError, match="caption model") as caught:
        Engine.load(settings)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("where", ["a folder of something else", "an empty folder"])
def test_a_folder_that_isnt_a_model_is_one_clear_error(engine_settings, tmp_path, where):
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    if where == "a folder of something else":
        (folder / "notes.txt").write_text("hello")
    settings = engine_settings.with_overrides(translation_model=str(folder))
    with pytest.raises(ModelLoadError, match="translation") as caught:
        Engine.load(settings)
    assert "\n" not in str(caught.value) and "TRANSLATION_MODELS" in str(caught.value)
