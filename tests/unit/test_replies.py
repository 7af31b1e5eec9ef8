"""What people read: plain sentences in each chat's languages, within Telegram's limits."""

from __future__ import annotations

import string

import pytest

from bot import replies
from bot.actions import ACTIONS
from bot.messages import CATALOG, message, ui_language
from bot.replies import answer_reply
from captioning import Capabilities, InvalidImage, Translated

EN, ES, BOTH = ("en",), ("es",), ("en", "es")


def T(english: str, spanish: str = "", **more: str) -> Translated:
    return Translated(english, {"es": spanish, **more} if spanish else dict(more))


def test_a_caption_becomes_a_sentence():
    assert replies.sentence("a red square") == "A red square."
    assert replies.sentence("is it red?") == "Is it red?"
    assert replies.sentence("  ") == ""


def test_a_runaway_caption_is_cut_short_for_screen_readers():
    text = replies.sentence("a very long caption " * 100)
    assert len(text) <= replies.MAX_DESCRIPTION_CHARS and text.endswith("…")


def test_each_language_setting_gives_its_own_reply():
    description = T("a red square", "un cuadrado rojo")
    assert replies.describe_reply(description, EN) == "Automatic description, may be wrong: A red square."
    assert (
        replies.describe_reply(description, ES) == "Descripción automática, puede fallar: Un cuadrado rojo."
    )
    assert replies.describe_reply(description, BOTH) == (
        "Automatic description, may be wrong / Descripción automática, puede fallar\n"
        "English: A red square.\nEspañol: Un cuadrado rojo."
    )


def test_a_language_without_a_catalog_is_labelled_in_english_and_by_its_own_name():
    description = T("a red square", "un cuadrado rojo", fr="un carré rouge")
    assert replies.describe_reply(description, ("en", "fr")) == (
        "Automatic description, may be wrong\nEnglish: A red square.\nFrançais: Un carré rouge."
    )
    assert (
        replies.describe_reply(description, ("fr",)) == "Automatic description, may be wrong: Un carré rouge."
    )
    assert answer_reply([T("red", "rojo", fr="rouge")], ("en", "es", "fr")) == (
        "Answer: Red.\nRespuesta: Rojo.\nFrançais: Rouge."
    )


def test_a_missing_translation_leaves_its_line_out():
    assert (
        replies.describe_reply(Translated("a red square", {}), BOTH)
        == "Automatic description, may be wrong: A red square."
    )


def test_an_empty_caption_says_so_instead_of_a_blank_line():
    assert replies.describe_reply(T("", ""), BOTH) == "I couldn't describe this picture."


def test_a_huge_album_stays_within_telegrams_4096_characters():
    results = [T("a red square " * 20, "un cuadrado rojo " * 20)] * 60
    text = replies.album_reply(results, BOTH, "en")
    assert len(text) <= 4096
    assert text.splitlines()[-1].startswith("(+") and text.splitlines()[-1].endswith("more not shown)")


def test_album_items_that_failed_are_named_in_the_readers_language():
    results = [T("a red square", "un cuadrado rojo"), InvalidImage("x", "damaged")]
    assert replies.album_reply(results, ES, "en").splitlines() == [
        "Descripciones automáticas de 2 imágenes, pueden fallar:",
        "1. Un cuadrado rojo.",
        "2. (esta no se pudo describir)",
    ]


def test_an_answer_is_in_the_chats_languages():
    answer = [T("two dogs", "dos perros")]
    assert answer_reply(answer, EN, "en") == "Answer: Two dogs."
    assert answer_reply(answer, ES, "en") == "Respuesta: Dos perros."
    assert answer_reply(answer, BOTH, "en") == "Answer: Two dogs.\nRespuesta: Dos perros."


def test_no_answer_and_a_problem_are_said_plainly():
    assert answer_reply([T("", "")], BOTH, "es") == "No tengo respuesta para eso."
    assert answer_reply(["Estoy muy ocupado."], BOTH, "es") == "Estoy muy ocupado."


def test_answers_about_an_album_are_numbered_and_fitted():
    results = [T("red", "rojo"), "busy", T("yes", "sí")]
    assert (
        answer_reply(results, EN, "en")
        == "Answers for 3 pictures:\n1. Red.\n2. (no answer for this one)\n3. Yes."
    )
    many = [T("word " * 100, "palabra " * 100)] * 20
    assert len(answer_reply(many, BOTH, "en")) <= 4096


def test_buttons_name_only_their_action():
    reading_off = Capabilities(("en", "es"), sizes={"describe": 224, "describe_detailed": 224})
    markup = ACTIONS.buttons("description", BOTH, reading_off)
    assert [b.callback_data for b in markup.inline_keyboard[0]] == ["again", "delete"]
    assert [b.text for b in ACTIONS.buttons("answer", ES, reading_off).inline_keyboard[0]] == ["Borrar"]


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("language", sorted(set(CATALOG) - {"en"}))
def test_every_catalog_has_the_same_keys_and_placeholders(language):
    english, other = CATALOG["en"], CATALOG[language]
    assert set(other) == set(english)
    for key, text in english.items():
        assert _placeholders(other[key]) == _placeholders(text), key


def test_the_interface_falls_back_to_english():
    assert ui_language("es-MX") == "es" and ui_language("fr") == "en" and ui_language(None) == "en"
    assert message("busy", "fr") == message("busy", "en")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ask @ana now", "ask @\u2060ana now"),
        ("/start", "/\u2060start"),
        ("see /help or (@bob)", "see /\u2060help or (@\u2060bob)"),
        ("mail ana@example.com", "mail ana@example.com"),  # an address, not a mention
        ("1/2 cup, 3 / 4", "1/2 cup, 3 / 4"),
        ("https://example.com/a/b", "https://example.com/a/b"),
    ],
)
def test_repeated_text_mentions_nobody_and_offers_no_command(text, expected):
    assert replies.inert(text) == expected
