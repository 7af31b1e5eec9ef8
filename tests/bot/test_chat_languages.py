"""CHAT_MODEL_LANGUAGES in a chat: a chat that reads Spanish gets the chat model's own Spanish
("un cuadrado de color rojo."), not Marian's ("un cuadrado rojo."), and a Spanish question
is answered without a model to put it in English."""

from __future__ import annotations

import pytest

from captioning import Engine, EngineSettings
from tests.support import pictures
from tests.support.bot_harness import running_bot, started_executor
from tests.support.fake_telegram import FakeTelegram, command

pytestmark = pytest.mark.xdist_group("chat")


async def chat_executor(tiny_model_dirs, **more: str):
    env = {**tiny_model_dirs.env(chat=True), "DEVICE": "cpu", "QUESTION_TRANSLATION_MODELS": "", **more}
    return await started_executor(Engine.load(EngineSettings.from_env(env)))


async def described_then_asked_in_spanish(telegram: FakeTelegram) -> tuple[dict, dict]:
    """A red photo from someone who reads Spanish, then "¿de qué color es?" in reply to it:
    the bot's two replies."""
    photo = telegram.message(5, language="es", photo=telegram.photo(pictures.jpeg("red")))
    await telegram.push(photo)
    [description] = await telegram.wait_for("sendMessage", chat_id=5)
    await telegram.push(telegram.message(5, language="es", text="¿de qué color es?", reply_to_message=photo))
    [_, reply] = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    return description, reply


@pytest.fixture
async def writing(tiny_model_dirs):
    executor = await chat_executor(tiny_model_dirs, CHAT_MODEL_LANGUAGES="es")
    yield executor
    await executor.stop()


async def test_a_chat_reading_spanish_gets_the_models_own_spanish(telegram, writing, tmp_path):
    async with running_bot(telegram, tmp_path / "state", writing):
        description, answer = await described_then_asked_in_spanish(telegram)
        await telegram.push(telegram.message(5, text="/detail long", entities=command("/detail long")))
        await telegram.push(telegram.message(5, language="es", photo=telegram.photo(pictures.jpeg("blue"))))
        [*_, long] = await telegram.wait_for("sendMessage", count=4, chat_id=5)
    assert description["text"] == (
        "Automatic description, may be wrong / Descripción automática, puede fallar\n"
        "English: A red square.\nEspañol: Un cuadrado de color rojo."
    )
    assert answer["text"] == "Answer: Red.\nRespuesta: Rojo."
    assert long["text"].endswith(
        "English: A picture of a blue square.\nEspañol: Una imagen de un cuadrado de color azul."
    )


async def test_with_the_setting_off_spanish_is_marians_and_spanish_questions_are_refused(
    telegram, tiny_model_dirs, tmp_path
):
    executor = await chat_executor(tiny_model_dirs)
    try:
        async with running_bot(telegram, tmp_path / "state", executor):
            description, refused = await described_then_asked_in_spanish(telegram)
    finally:
        await executor.stop()
    assert description["text"].endswith("English: A red square.\nEspañol: Un cuadrado rojo.")
    assert refused["text"] == (
        "Aquí no puedo responder preguntas en este idioma (Español); pregunta en inglés, por favor."
    )
