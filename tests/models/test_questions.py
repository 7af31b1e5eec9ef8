"""Questions about a picture: the language they are asked in, and BLIP-2's answers."""

from __future__ import annotations

import pytest

from captioning import Engine, SettingsError, Translated
from captioning.questions import Question, looks_like_a_question, prompt, question_language
from tests.support.tiny_models import COLORS, square


@pytest.mark.parametrize(
    "text",
    ["what color is it?", "is there a dog?", "how many people are there", "What does the sign say?"],
)
def test_english_questions_are_english(text):
    assert question_language(text, hint="es") == "en"


@pytest.mark.parametrize(
    "text",
    ["¿de qué color es?", "de que color es", "hay un perro?", "cuántas personas hay", "qué dice el cartel"],
)
def test_spanish_questions_are_spanish(text):
    assert question_language(text, hint="en") == "es"


@pytest.mark.parametrize("text", ["ok", "red?", "???", ""])
def test_too_short_to_tell_follows_the_askers_language(text):
    assert question_language(text, hint="es") == "es"
    assert question_language(text, hint="en") == "en"


def test_the_prompt_is_blip2s_vqa_format():
    assert prompt("  what color is it? ") == "Question: what color is it? Answer:"


def test_a_question_gets_its_answer_in_both_languages(engine):
    assert engine.answer([square("red")], ["what color is it?"]) == [Translated("red", {"es": "rojo"})]


def test_a_spanish_question_is_translated_first(engine):
    assert engine.questions.to_english([Question("¿de qué color es?", "es"), "is it a square?"]) == [
        "what color is it?",
        "is it a square?",
    ]
    assert engine.answer([square("blue")], [Question("¿de qué color es?", "es")]) == [
        Translated("blue", {"es": "azul"})
    ]


def test_questions_of_different_lengths_batch_like_one_at_a_time(engine):
    # Prompts of different lengths are padded on the left: every answer starts together.
    asked = [(c, q) for c in COLORS for q in ("what color is it?", "is it a square?")]
    one_by_one = [engine.answer([square(c)], [q])[0] for c, q in asked]
    batched = engine.answer([square(c) for c, _ in asked], [q for _, q in asked])
    assert batched == one_by_one
    assert [d.english for d in batched] == [a for c in COLORS for a in (c, "yes")]


def test_one_question_per_picture(engine):
    with pytest.raises(ValueError, match="2 pictures but 1 questions"):
        engine.answer([square("red"), square("blue")], ["what color is it?"])
    assert engine.answer([], []) == []


def test_spanish_questions_need_the_question_model(engine_settings):
    engine = Engine.load(engine_settings, questions=False)
    assert engine.capabilities.question_languages == ("en",)
    assert engine.answer([square("green")], ["what color is it?"]) == [Translated("green", {"es": "verde"})]
    with pytest.raises(SettingsError, match="QUESTION_TRANSLATION_MODELS"):
        engine.answer([square("green")], [Question("¿de qué color es?", "es")])


def test_a_question_model_that_cant_be_loaded_is_one_line_and_the_rest_works(
    engine_settings, tmp_path, caplog
):
    settings = engine_settings.with_overrides(question_translation_model=str(tmp_path / "nowhere"))
    engine = Engine.load(settings)
    assert engine.capabilities.question_languages == ("en",)
    lines = [r for r in caplog.records if "question translation" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None and "\n" not in lines[0].getMessage()
    assert engine.answer([square("red")], ["what color is it?"]) == [Translated("red", {"es": "rojo"})]


def test_an_empty_question_model_turns_questions_in_spanish_off(engine_settings):
    engine = Engine.load(engine_settings.with_overrides(question_translation_model=""))
    assert engine.capabilities.question_languages == ("en",)


def test_language_detection_is_limited_to_the_languages_given():
    assert question_language("quelle est la couleur?", languages=("en", "es", "fr")) == "fr"
    assert question_language("quelle est la couleur?", languages=("en", "es")) != "fr"


@pytest.mark.parametrize(
    "text",
    [
        "what color is it?",
        "¿hay un perro",
        "what is he holding",
        "Describe the background",
        "what's on the sign",
        "qué dice el cartel",
        "dime cuántas personas hay",
        "Is it raining",
        "and what is she holding",
        "y qué lleva en la mano",
    ],
)
def test_questions_and_requests_look_like_questions(text):
    assert looks_like_a_question(text)


@pytest.mark.parametrize("text", ["thanks!", "lol", "gracias", "nice photo", "👍", "ok", ""])
def test_chatter_does_not(text):
    assert not looks_like_a_question(text)


def test_too_short_to_tell_counts_in_the_askers_own_language_even_if_not_offered():
    assert question_language("combien ?", hint="fr-CA", languages=("en", "es", "fr")) == "fr"
    assert question_language("combien ?", hint="fr", languages=("en", "es")) == "fr"  # then refused
