"""CHAT_MODEL_LANGUAGES: a chat model writes the languages it names itself, told to ("...
Answer in Spanish."), instead of Marian translating its English; off by default. The tiny
chat model writes "un cuadrado de color rojo.", the tiny en->es model "un cuadrado rojo."."""

from __future__ import annotations

import json
import logging

import pytest
from PIL import Image

from captioning import Answer, Describe, Engine, EngineSettings, Question, Translated
from captioning.__main__ import main
from tests.support.tiny_chat import chat_caption_for, chat_detailed_for, chat_spanish_for
from tests.support.tiny_models import COLORS, chat_translation_for, square

pytestmark = pytest.mark.xdist_group("chat")


def settings(tiny_model_dirs, **more: str) -> EngineSettings:
    return EngineSettings.from_env({**tiny_model_dirs.env(chat=True), "DEVICE": "cpu", **more})


@pytest.fixture(scope="module")
def writing(tiny_model_dirs) -> Engine:
    """The tiny chat model writing Spanish itself, with no model for Spanish questions."""
    return Engine.load(settings(tiny_model_dirs, CHAT_MODEL_LANGUAGES="es", QUESTION_TRANSLATION_MODELS=""))


def spanish(color: str) -> str:
    return COLORS[color][1]


def test_the_chat_model_writes_spanish_itself_short_and_long(writing):
    assert writing.describe([square("red")]) == [
        Translated(chat_caption_for("red"), {"es": chat_spanish_for("rojo")})
    ]
    [long] = writing.describe([square("green")], detailed=True)
    assert long == Translated(chat_detailed_for("green"), {"es": chat_spanish_for("verde", detailed=True)})


def test_off_by_default_marian_translates_the_english(tiny_model_dirs):
    default = Engine.load(settings(tiny_model_dirs))
    assert default.describe([square("red")]) == [
        Translated("a red square.", {"es": chat_translation_for("red")})
    ]
    assert chat_translation_for("red") != chat_spanish_for("rojo")  # the two can be told apart


def test_a_spanish_question_goes_to_the_chat_model_as_asked(writing):
    # No Spanish question model is loaded: the question can't have been put in English.
    assert "es" in writing.capabilities.question_languages and not writing.questions.languages
    got = writing.answer(
        [square("blue"), square("red")], [Question("¿de qué color es?", "es"), "what color is it?"]
    )
    assert got == [Translated("blue", {"es": "azul"}), Translated("red", {"es": "rojo"})]


def test_batched_with_languages_mixed_is_one_at_a_time(writing):
    pictures = [square(c) for c in ("red", "blue", "yellow")] + [
        Image.new("RGB", (90, 40), COLORS["white"][0])
    ]
    tasks = [
        Describe(False, ("es",)),
        Describe(False, ()),
        Describe(False, ("es",)),
        Describe(False, ("es",)),
    ]
    batch = writing.run("describe", pictures, tasks)
    assert batch == [writing.run("describe", [p], [t])[0] for p, t in zip(pictures, tasks, strict=True)]
    assert batch[1] == Translated(chat_caption_for("blue")) and batch[3].translations == {
        "es": chat_spanish_for("blanco")
    }
    asked = [
        Answer(Question("¿de qué color es?", "es"), ("es",)),
        Answer(Question("is it a square?"), ("es",)),
    ]
    both = writing.run("answer", pictures[:2], asked)
    assert both == [writing.run("answer", [p], [a])[0] for p, a in zip(pictures[:2], asked, strict=True)]
    assert both == [Translated("red", {"es": "rojo"}), Translated("yes", {"es": "sí"})]


def test_the_languages_it_writes_are_offered_without_a_translator(tiny_model_dirs):
    engine = Engine.load(settings(tiny_model_dirs, CHAT_MODEL_LANGUAGES="fr,es"))
    assert engine.translations.languages == ("es",)  # no French model
    assert engine.capabilities.languages == ("en", "es", "fr")
    assert engine.capabilities.question_languages == ("en", "es", "fr")


def test_with_blip2_the_setting_is_ignored_in_one_log_line(engine_settings, caplog):
    with caplog.at_level(logging.WARNING, logger="captioning"):
        engine = Engine.load(engine_settings.with_overrides(chat_model_languages="es,fr"))
    assert engine.capabilities.languages == ("en", "es")  # the translators' only
    [line] = [r.getMessage() for r in caplog.records if "CHAT_MODEL_LANGUAGES" in r.getMessage()]
    assert line.startswith("CHAT_MODEL_LANGUAGES=es,fr is ignored: the caption model (BLIP-2")
    assert engine.describe([square("red")]) == [Translated("a red square", {"es": "un cuadrado rojo"})]


def test_the_cli_asks_a_spanish_question_as_asked(tmp_path, model_env, tiny_model_dirs, monkeypatch, capsys):
    for name, value in {"CAPTION_MODEL": str(tiny_model_dirs.chat), "CHAT_MODEL_LANGUAGES": "es"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("QUESTION_TRANSLATION_MODELS", "")
    path = tmp_path / "green.png"
    square("green").save(path)
    assert main(["--json", "--ask", "¿de qué color es?", str(path)]) == 0
    [answer] = json.loads(capsys.readouterr().out)
    assert main(["--json", str(path)]) == 0
    [description] = json.loads(capsys.readouterr().out)
    assert (answer["english"], answer["translations"]) == ("green", {"es": "verde"})
    assert description["translations"] == {"es": chat_spanish_for("verde")}
