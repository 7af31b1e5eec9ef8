"""Any language Marian speaks: a setting adds it, a chat chooses it, and either backend serves it.

The tiny models speak Spanish (one model) and French and Portuguese (one multi-target model,
which reads its target from a ``>>fra<<`` / ``>>por<<`` token, as opus-mt-tc-big's do).
"""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from captioning import Engine, EngineSettings, ModelLoadError, Translated
from tests.support import pictures
from tests.support.bot_harness import running_bot
from tests.support.fake_telegram import command
from tests.support.tiny_models import COLORS, caption_for, in_other, square, translation_for

# One worker runs them all: the engines of both backends are the module's, made once.
pytestmark = pytest.mark.xdist_group("translation")


GROUP = -100321
ADMIN, MEMBER = 41, 42
BACKENDS = ["transformers", "ctranslate2"]


def settings_for(tiny_model_dirs, tmp_path, backend: str, **more: str) -> EngineSettings:
    return EngineSettings.from_env(
        {
            **tiny_model_dirs.env(more_languages=True),
            "DEVICE": "cpu",
            "TRANSLATION_BACKEND": backend,
            "CT2_CACHE_DIR": str(tmp_path / "ct2"),
            **more,
        }
    )


@pytest.fixture(scope="module", params=BACKENDS)
def polyglot(request, tiny_model_dirs, tmp_path_factory) -> Engine:
    """The tiny engine with es, fr and pt, through each translation backend."""
    folder = tmp_path_factory.mktemp(f"polyglot-{request.param}")
    return Engine.load(settings_for(tiny_model_dirs, folder, request.param))


@pytest.fixture
async def polyglot_executor(polyglot):
    from tests.support.bot_harness import started_executor

    executor = await started_executor(polyglot)
    yield executor
    await executor.stop()


# -- the engine --------------------------------------------------------------------------------


def test_each_configured_language_is_translated(polyglot):
    assert polyglot.capabilities.languages == ("en", "es", "fr", "pt")
    results = polyglot.describe([square(c) for c in COLORS])
    assert results == [
        Translated(
            caption_for(c),
            {
                "es": translation_for(c),
                "fr": in_other("fr", caption_for(c)),
                "pt": in_other("pt", caption_for(c)),
            },
        )
        for c in COLORS
    ]


def test_both_backends_give_the_same_words(tiny_model_dirs, tmp_path):
    texts = [caption_for(c) for c in COLORS] + ["", "red", "yes", "a white square", ""]
    words = {}
    for backend in BACKENDS:
        engine = Engine.load(settings_for(tiny_model_dirs, tmp_path, backend))
        words[backend] = {code: t.translate(texts) for code, t in engine.translations.translators.items()}
        words[backend]["questions"] = engine.questions.translators["es"].translate(["¿de qué color es?", ""])
    assert words["transformers"] == words["ctranslate2"]
    assert words["ctranslate2"]["fr"][:2] == ["un carré rouge", "un carré vert"]
    assert words["ctranslate2"]["es"][5:8] == ["", "rojo", "sí"]
    assert words["ctranslate2"]["questions"] == ["what color is it?", ""]


def test_a_multi_target_model_is_loaded_once_for_all_its_languages(polyglot):
    french, portuguese = polyglot.translations.translators["fr"], polyglot.translations.translators["pt"]
    assert french.model is portuguese.model and french.target_token != portuguese.target_token


def test_only_the_languages_a_task_asks_for_are_translated(polyglot, monkeypatch):
    calls = []
    for code, translator in polyglot.translations.translators.items():
        original = translator.translate
        monkeypatch.setattr(
            translator,
            "translate",
            lambda texts, code=code, original=original: calls.append((code, len(texts))) or original(texts),
        )
    polyglot.describe([square("red"), square("blue")], languages=("fr",))
    assert calls == [("fr", 2)]  # one pass, for the one language asked for


def test_a_target_token_the_model_lacks_is_one_clear_error(tiny_model_dirs, tmp_path):
    for backend in BACKENDS:
        settings = settings_for(
            tiny_model_dirs, tmp_path, backend, TRANSLATION_MODELS=f"de={tiny_model_dirs.multi}@>>deu<<"
        )
        with pytest.raises(ModelLoadError, match=">>deu<<") as caught:
            Engine.load(settings)
        assert "\n" not in str(caught.value)


def test_the_ctranslate2_conversion_is_done_once_and_reused(tiny_model_dirs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    settings = settings_for(tiny_model_dirs, tmp_path, "ctranslate2")
    Engine.load(settings)
    Engine.load(settings)
    conversions = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Converting")]
    assert len(conversions) == 3  # es, the multi-target model (once for fr and pt), the question model
    assert len([p for p in (tmp_path / "ct2").iterdir() if p.is_dir()]) == 3


def test_ctranslate2_runs_on_the_gpu_device_names():
    import torch

    from captioning.translation.ctranslate2 import translator_options

    on_second_gpu = translator_options(torch.device("cuda:1"), "int8_float16", threads=2)
    assert on_second_gpu == {
        "device": "cuda",
        "device_index": 1,  # not GPU 0, as with the device's type alone
        "compute_type": "int8_float16",
        "intra_threads": 2,
    }
    assert translator_options("cuda", "auto")["device_index"] == 0
    assert translator_options("cuda", "auto")["compute_type"] == "int8_float16"
    assert translator_options("cpu", "auto")["compute_type"] == "int8"


# -- chats choose their languages ---------------------------------------------------------------


async def test_lang_en_fr_gives_english_and_french_and_no_spanish(telegram, polyglot_executor, tmp_path):
    state = tmp_path / "state"
    async with running_bot(telegram, state, polyglot_executor):
        await telegram.push(telegram.message(5, text="/lang en fr", entities=command("/lang en fr")))
        [done] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert done["text"] == "Descriptions here will be in: English, Français."
    assert (
        replies[1]["text"]
        == "Automatic description, may be wrong\nEnglish: A red square.\nFrançais: Un carré rouge."
    )
    async with running_bot(telegram, state, polyglot_executor):  # and after a restart
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("blue")))
        await telegram.push(photo)
        replies = await telegram.wait_for("sendMessage", count=3, chat_id=5)
        await telegram.push(telegram.message(5, text="what color is it?", reply_to_message=photo))
        answers = await telegram.wait_for("sendMessage", count=4, chat_id=5)
    assert (
        replies[2]["text"]
        == "Automatic description, may be wrong\nEnglish: A blue square.\nFrançais: Un carré bleu."
    )
    assert answers[3]["text"] == "Answer: Blue.\nFrançais: Bleu."


async def test_a_new_private_chat_also_gets_its_persons_own_language(telegram, polyglot_executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", polyglot_executor):
        await telegram.push(
            telegram.message(5, language="pt-BR", photo=telegram.photo(pictures.jpeg("green")))
        )
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert reply["text"].splitlines()[1:] == [
        "English: A green square.",
        "Español: Un cuadrado verde.",
        "Português: Um quadrado verde.",
    ]


async def test_lang_alone_shows_buttons_that_add_and_remove_languages(telegram, polyglot_executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    async with running_bot(telegram, tmp_path / "state", polyglot_executor):
        await telegram.push(telegram.message(GROUP, user_id=ADMIN, text="/lang", entities=command("/lang")))
        [menu] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        markup = (
            json.loads(menu["reply_markup"])
            if isinstance(menu["reply_markup"], str)
            else menu["reply_markup"]
        )
        buttons = [b for row in markup["inline_keyboard"] for b in row]
        assert [(b["text"], b["callback_data"]) for b in buttons] == [
            ("✓ English", "lang:en"),
            ("✓ Español", "lang:es"),
            ("Français", "lang:fr"),
            ("Português", "lang:pt"),
        ]
        presses = [(MEMBER, "lang:fr"), (ADMIN, "lang:es"), (ADMIN, "lang:fr"), (ADMIN, "lang:en")]
        for n, (who, data) in enumerate(presses, start=1):  # one after another, as people tap
            await telegram.press(menu, None, data, user_id=who)
            await telegram.wait_for("answerCallbackQuery", count=n)
        await telegram.push(
            telegram.message(GROUP, user_id=MEMBER, photo=telegram.photo(pictures.jpeg("red")))
        )
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
    answers = [a.get("text") for a in telegram.sent("answerCallbackQuery")]
    assert answers == [
        "Only this group's admins can change that.",
        "Descriptions here will be in: English.",
        "Descriptions here will be in: English, Français.",
        "Descriptions here will be in: Français.",
    ]
    assert (
        replies[1]["text"] == "Automatic description, may be wrong: Un carré rouge."
    )  # French alone, labelled in English
    ticks = telegram.sent("editMessageReplyMarkup")
    last = (
        json.loads(ticks[-1]["reply_markup"])
        if isinstance(ticks[-1]["reply_markup"], str)
        else ticks[-1]["reply_markup"]
    )
    assert [b["text"] for row in last["inline_keyboard"] for b in row] == [
        "English",
        "Español",
        "✓ Français",
        "Português",
    ]


async def test_a_language_the_bot_cant_describe_in_is_refused_with_the_choices(
    telegram, polyglot_executor, tmp_path
):
    async with running_bot(telegram, tmp_path / "state", polyglot_executor):
        await telegram.push(telegram.message(5, text="/lang en de", entities=command("/lang en de")))
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert reply["text"] == "I can't describe in de. I can in: en es fr pt."


async def test_a_question_in_a_language_without_its_model_asks_for_english(
    telegram, polyglot_executor, tmp_path
):
    async with running_bot(telegram, tmp_path / "state", polyglot_executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.push(
            telegram.message(5, text="de quelle couleur est ce carré ?", reply_to_message=photo)
        )
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    refused = "I can't take questions in this language (Français) here; please ask in English."
    assert replies[1]["text"] == refused


async def test_lang_both_still_means_english_and_spanish(telegram, polyglot_executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", polyglot_executor):
        for n, text in enumerate(["/lang fr", "/lang both"], start=1):
            await telegram.push(telegram.message(5, text=text, entities=command(text)))
            await telegram.wait_for("sendMessage", count=n, chat_id=5)
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        replies = await telegram.wait_for("sendMessage", count=3, chat_id=5)
    assert [r["text"] for r in replies] == [
        "Descriptions here will be in: Français.",
        "Descriptions here will be in: English, Español.",
        "Automatic description, may be wrong / Descripción automática, puede fallar\n"
        "English: A red square.\nEspañol: Un cuadrado rojo.",
    ]


async def test_a_groups_languages_survive_a_restart(telegram, polyglot_executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    state = tmp_path / "state"
    async with running_bot(telegram, state, polyglot_executor):
        choice = "/lang en fr"
        await telegram.push(telegram.message(GROUP, user_id=ADMIN, text=choice, entities=command(choice)))
        [done] = await telegram.wait_for("sendMessage", chat_id=GROUP)
    assert done["text"] == "Descriptions here will be in: English, Français."
    async with running_bot(telegram, state, polyglot_executor):
        photo = telegram.photo(pictures.jpeg("blue"))
        await telegram.push(telegram.message(GROUP, user_id=MEMBER, photo=photo))
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
    assert (
        replies[1]["text"]
        == "Automatic description, may be wrong\nEnglish: A blue square.\nFrançais: Un carré bleu."
    )


async def test_two_admins_pressing_at_once_both_get_their_language(telegram, polyglot_executor, tmp_path):
    other_admin = ADMIN + 1
    for admin in (ADMIN, other_admin):
        telegram.members[(GROUP, admin)] = "administrator"
    async with running_bot(telegram, tmp_path / "state", polyglot_executor):
        await telegram.push(telegram.message(GROUP, user_id=ADMIN, text="/lang", entities=command("/lang")))
        [menu] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        telegram.member_gate = asyncio.Event()  # Telegram answers who is an admin for both at once
        await telegram.press(menu, None, "lang:fr", user_id=ADMIN)
        await telegram.press(menu, None, "lang:pt", user_id=other_admin)
        await telegram.wait_for("getChatMember", count=2)
        telegram.member_gate.set()
        await telegram.wait_for("answerCallbackQuery", count=2)
        await telegram.push(telegram.message(GROUP, user_id=ADMIN, text="/lang", entities=command("/lang")))
        shown = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
    assert shown[1]["text"].startswith("Descriptions here are in: English, Español, ")
    assert "Français" in shown[1]["text"] and "Português" in shown[1]["text"]


async def test_a_long_translation_drops_no_language_and_comes_as_a_file_once(telegram, polyglot, tmp_path):
    from captioning import Read
    from tests.support.bot_harness import started_executor
    from tests.support.describers import Wrapped

    page = "\n".join(["a red square", "a blue square"] * 200)  # far past three messages in three languages

    async def a_page(task, result):
        return page if isinstance(task, Read) else result

    executor = await started_executor(polyglot)
    describer = Wrapped(executor, on_result=a_page)
    try:
        # The quota counts a long translation as more than one message: room for two here.
        async with running_bot(telegram, tmp_path / "state", describer, person_messages_per_minute=100):
            await telegram.push(telegram.message(5, text="/lang en es fr pt", entities=command("/lang")))
            await telegram.wait_for("sendMessage", chat_id=5)
            photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
            await telegram.push(
                telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
            )
            text = (await telegram.wait_for("sendMessage", count=3, chat_id=5))[2]  # its last part
            await telegram.press(text, photo, "translate", user_id=5)
            [translated] = await telegram.wait_for("sendDocument", chat_id=5)
            await telegram.press(text, photo, "translate", user_id=5)  # again: from what was kept
            await telegram.wait_for("sendDocument", count=2, chat_id=5)
    finally:
        await executor.stop()
    whole = translated["document"]["data"].decode()
    for name, line in (
        ("Español", "un cuadrado rojo"),
        ("Français", "un carré rouge"),
        ("Português", "um quadrado vermelho"),
    ):
        assert f"{name}:\n{line}\n" in whole and whole.count(line) == 200
    assert [type(s["task"]).__name__ for s in describer.submitted].count("Translate") == 1
