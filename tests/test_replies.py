"""What people read: plain sentences, both languages, within Telegram's limits."""

from __future__ import annotations

from bot import replies
from bot.replies import answer_reply
from captioning import Description, InvalidImage


def test_a_caption_becomes_a_sentence():
    assert replies.sentence("a red square") == "A red square."
    assert replies.sentence("is it red?") == "Is it red?"
    assert replies.sentence("  ") == ""


def test_a_runaway_caption_is_cut_short_for_screen_readers():
    text = replies.sentence("a very long caption " * 100)
    assert len(text) <= replies.MAX_DESCRIPTION_CHARS and text.endswith("…")


def test_each_language_setting_gives_its_own_reply():
    description = Description("a red square", "un cuadrado rojo")
    assert replies.describe_reply(description, "en") == "Automatic description: A red square."
    assert replies.describe_reply(description, "es") == "Descripción automática: Un cuadrado rojo."
    assert replies.describe_reply(description, "both").splitlines()[1:] == [
        "English: A red square.",
        "Español: Un cuadrado rojo.",
    ]


def test_an_empty_caption_says_so_instead_of_a_blank_line():
    assert replies.describe_reply(Description("", ""), "both") == "I couldn't describe this picture."


def test_a_huge_album_stays_within_telegrams_4096_characters():
    results = [Description("a red square " * 20, "un cuadrado rojo " * 20)] * 60
    text = replies.album_reply(results, "both", "en")
    assert len(text) <= 4096
    assert text.splitlines()[-1].startswith("(+") and text.splitlines()[-1].endswith("more not shown)")


def test_album_items_that_failed_are_named_in_the_readers_language():
    results = [Description("a red square", "un cuadrado rojo"), InvalidImage("x", "damaged")]
    assert replies.album_reply(results, "es", "en").splitlines() == [
        "Descripciones automáticas de 2 imágenes:",
        "1. Un cuadrado rojo.",
        "2. (esta no se pudo describir)",
    ]


def test_an_answer_is_in_the_chats_languages():
    answer = [Description("two dogs", "dos perros")]
    assert answer_reply(answer, "en", "en") == "Answer: Two dogs."
    assert answer_reply(answer, "es", "en") == "Respuesta: Dos perros."
    assert answer_reply(answer, "both", "en") == "Answer: Two dogs.\nRespuesta: Dos perros."


def test_no_answer_and_a_problem_are_said_plainly():
    assert answer_reply([Description("", "")], "both", "es") == "No tengo respuesta para eso."
    assert answer_reply(["Estoy muy ocupado."], "both", "es") == "Estoy muy ocupado."


def test_answers_about_an_album_are_numbered_and_fitted():
    results = [Description("red", "rojo"), "busy", Description("yes", "sí")]
    assert answer_reply(results, "en", "en") == (
        "Answers for 3 pictures:\n1. Red.\n2. (no answer for this one)\n3. Yes."
    )
    many = [Description("word " * 100, "palabra " * 100)] * 20
    assert len(answer_reply(many, "both", "en")) <= 4096
