"""Questions about a photo, through the Bot API stand-in, answered by the trained tiny models."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from captioning import Answer, Describe, Engine
from captioning.questions import MAX_QUESTION_CHARS, Question
from tests.support import pictures
from tests.support.bot_harness import FAST, running_bot, started_executor
from tests.support.describers import Wrapped, full_after
from tests.support.fake_telegram import FakeTelegram, command
from tests.support.waiting import journaled, until, until_handled

GROUP = -100999
ASKER = 31


async def described(telegram, chat_id: int, color: str, count: int = 1, **who) -> tuple[dict, dict]:
    """Send a photo of ``color``; returns (the photo message, the bot's description params)."""
    photo = telegram.message(chat_id, photo=telegram.photo(pictures.jpeg(color)), **who)
    await telegram.push(photo)
    replies = await telegram.wait_for("sendMessage", count=count, chat_id=chat_id)
    return photo, replies[-1]


async def asked(telegram, chat_id: int, text: str, reply_to: dict, **who) -> list[dict]:
    """Reply to ``reply_to`` with ``text``; returns what the bot has sent the chat, once it answered."""
    before = telegram.count("sendMessage", chat_id)
    await telegram.push(telegram.message(chat_id, text=text, reply_to_message=reply_to, **who))
    return await telegram.wait_for("sendMessage", count=before + 1, chat_id=chat_id)


async def test_a_reply_to_the_description_asks_about_the_photo(telegram, executor, tmp_path):
    describer = Wrapped(executor)
    async with running_bot(telegram, tmp_path / "state", describer):
        _, description = await described(telegram, 5, "red")
        question = telegram.message(
            5, text="what color is it?", reply_to_message=telegram.bot_message(description)
        )
        await telegram.push(question)
        answers = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    answer = answers[-1]
    assert answer["text"] == "Answer: Red.\nRespuesta: Rojo."
    assert answer["reply_parameters"]["message_id"] == question["message_id"]
    # The photo went through the executor twice: described, then asked about.
    assert [keys["task"] for keys in describer.submitted] == [
        Describe(False, ("es",)),
        Answer(Question("what color is it?", "en"), ("es",)),
    ]


async def test_a_spanish_question_in_reply_to_the_photo_itself_in_private(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo, _ = await described(telegram, 5, "blue")
        answers = await asked(telegram, 5, "¿de qué color es?", photo, language="es")
    assert answers[-1]["text"] == "Answer: Blue.\nRespuesta: Azul."


async def test_the_answer_comes_in_the_chats_languages(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        await telegram.push(telegram.message(5, text="/lang es", entities=command("/lang es")))
        await telegram.wait_for("sendMessage", chat_id=5)
        _, description = await described(telegram, 5, "yellow", count=2)
        answers = await asked(telegram, 5, "is it a square?", telegram.bot_message(description))
    assert answers[-1]["text"] == "Respuesta: Sí."


async def test_a_follow_up_replies_to_the_answer(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        _, description = await described(telegram, 5, "green")
        answers = await asked(telegram, 5, "is it a square?", telegram.bot_message(description))
        answers = await asked(telegram, 5, "what color is it?", telegram.bot_message(answers[-1]))
    assert answers[1]["text"] == "Answer: Yes.\nRespuesta: Sí."
    assert answers[2]["text"] == "Answer: Green.\nRespuesta: Verde."


async def test_a_question_about_an_album_is_answered_for_each_photo(telegram, executor, tmp_path):
    colors = ["red", "white", "blue"]
    photos = [
        telegram.message(5, media_group_id="a1", photo=telegram.photo(pictures.jpeg(c))) for c in colors
    ]
    async with running_bot(telegram, tmp_path / "state", executor):
        for photo in photos:
            await telegram.push(photo)
        [album_reply] = await telegram.wait_for("sendMessage", chat_id=5)
        answers = await asked(telegram, 5, "what color is it?", telegram.bot_message(album_reply))
    assert answers[-1]["text"] == (
        "Answers / Respuestas (3):\n"
        "1. English: Red.\n   Español: Rojo.\n"
        "2. English: White.\n   Español: Blanco.\n"
        "3. English: Blue.\n   Español: Azul."
    )


async def test_in_groups_only_questions_to_the_bot_are_answered(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo, description = await described(telegram, GROUP, "red", user_id=ASKER)
        bots = telegram.bot_message(description)
        chatter = [
            telegram.message(GROUP, user_id=ASKER, text="thanks!", reply_to_message=bots),
            telegram.message(GROUP, user_id=ASKER, text="nice one", reply_to_message=bots),
            # A question to the person who posted the photo, not to the bot.
            telegram.message(GROUP, user_id=40, text="what color is it?", reply_to_message=photo),
            telegram.message(GROUP, user_id=41, text="what color is it?"),
        ]
        ids = [await telegram.push(m) for m in chatter]
        await until_handled(tmp_path / "state", *ids)  # all handled, and none answered
        assert telegram.count("sendMessage", GROUP) == 1
        question = await telegram.push(
            telegram.message(GROUP, user_id=40, text="what color is it?", reply_to_message=bots)
        )
        answers = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
        await until_handled(tmp_path / "state", question)
    assert answers[-1]["text"] == "Answer: Red.\nRespuesta: Rojo."
    assert telegram.count("sendMessage", GROUP) == 2


async def test_a_reply_to_a_message_about_no_photo_says_how_to_ask(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        await telegram.push(telegram.message(5, text="/help", entities=command("/help")))
        [help_text] = await telegram.wait_for("sendMessage", chat_id=5)
        replies = await asked(telegram, 5, "what color is it?", telegram.bot_message(help_text))
    assert replies[-1]["text"].startswith("To ask about a photo, reply to the photo or to my description")


async def test_a_question_that_is_too_long_is_refused_politely(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo, _ = await described(telegram, 5, "red")
        await telegram.push(telegram.message(5, text="why " * 100 + "?", reply_to_message=photo))
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert replies[-1]["text"] == f"Please ask a shorter question (at most {MAX_QUESTION_CHARS} characters)."


async def test_a_question_about_a_file_that_is_not_a_picture_says_so(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        pdf = telegram.message(5, document=telegram.document(pictures.pdf(), name="a.pdf"))
        await telegram.push(pdf)
        await telegram.wait_for("sendMessage", chat_id=5)
        replies = await asked(telegram, 5, "what color is it?", pdf)
    assert replies[-1]["text"].startswith("This is a PDF document")


async def test_a_deleted_description_can_no_longer_be_asked_about(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo, description = await described(telegram, 5, "red")
        await telegram.press(description, photo, "delete", user_id=5)
        await telegram.wait_for("deleteMessage")
        replies = await asked(telegram, 5, "what color is it?", telegram.bot_message(description))
    assert replies[-1]["text"].startswith("To ask about a photo")


async def test_descriptions_stay_askable_across_a_restart(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        _, description = await described(telegram, 5, "white")
    async with running_bot(telegram, tmp_path / "state", executor):
        replies = await asked(telegram, 5, "what color is it?", telegram.bot_message(description))
    assert replies[-1]["text"] == "Answer: White.\nRespuesta: Blanco."


async def test_an_edited_photo_or_question_is_not_answered_again(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo, _ = await described(telegram, 5, "red")
        first = await telegram.push({**photo, "edit_date": photo["date"] + 5}, kind="edited_message")
        edited = telegram.message(5, text="what color is it?", reply_to_message=photo, edit_date=1)
        second = await telegram.push(edited, kind="edited_message")
        await until_handled(tmp_path / "state", first, second)
    assert telegram.count("sendMessage", 5) == 1


@pytest.mark.parametrize("chat_id", [5, GROUP])
async def test_a_busy_executor_says_ask_again(telegram, executor, tmp_path, chat_id):
    async with running_bot(telegram, tmp_path / "state", Wrapped(executor, refuse=full_after(1))):
        _, description = await described(telegram, chat_id, "red", user_id=ASKER)
        bots = telegram.bot_message(description)
        await telegram.push(
            telegram.message(chat_id, user_id=ASKER, text="what is it?", reply_to_message=bots)
        )
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=chat_id)
    assert replies[-1]["text"] == "I'm very busy right now; please ask again in a minute."


async def test_a_question_is_not_kept_once_answered(telegram, executor, tmp_path):
    import sqlite3

    async with running_bot(telegram, tmp_path / "state", executor):
        _, description = await described(telegram, 5, "red")
        await asked(telegram, 5, "is the red one mine?", telegram.bot_message(description))
        await until_handled(tmp_path / "state", 1, 2)  # marked done after its reply
    with sqlite3.connect(tmp_path / "state" / "bot.sqlite3") as db:
        bodies = [body for (body,) in db.execute("SELECT body FROM journal WHERE done_at IS NOT NULL")]
    assert len(bodies) == 2 and set(bodies) == {"{}"}


async def test_a_photo_with_a_question_as_its_caption_gets_the_answer_too(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        asking = telegram.message(5, photo=telegram.photo(pictures.jpeg("blue")), caption="what color is it?")
        await telegram.push(asking)
        description, answer = await telegram.wait_for("sendMessage", count=2, chat_id=5)
        labelled = telegram.message(6, photo=telegram.photo(pictures.jpeg("red")), caption="my new rug")
        update = await telegram.push(labelled)
        await telegram.wait_for("sendMessage", chat_id=6)
        await until_handled(tmp_path / "state", update)
    assert description["text"].startswith("Automatic description, may be wrong")
    assert answer["text"] == "Answer: Blue.\nRespuesta: Azul."
    assert answer["reply_parameters"]["message_id"] == asking["message_id"]
    assert telegram.count("sendMessage", 6) == 1  # a caption that asks nothing is left be


async def test_a_question_met_by_a_telegram_outage_is_answered_after_a_restart(telegram, executor, tmp_path):
    state = tmp_path / "state"
    retry_later = dataclasses.replace(FAST, retry_delays_s=(3600.0,))
    async with running_bot(telegram, state, executor, timings=retry_later) as runner:
        photo, _ = await described(telegram, 5, "green")
        telegram.fail_next["getFile"] = [FakeTelegram.bad_gateway()]
        question = await telegram.push(telegram.message(5, text="what color is it?", reply_to_message=photo))
        await until(lambda: question in runner.svc.journal.retrying, "the question set to be tried again")
        assert telegram.count("sendMessage", 5) == 1  # no answer, and no "something went wrong"
    assert journaled(state)[question] is False
    async with running_bot(telegram, state, executor):
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert replies[-1]["text"] == "Answer: Green.\nRespuesta: Verde."


async def test_a_file_telegram_no_longer_has_is_said_plainly(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo, _ = await described(telegram, 5, "green")
        telegram.fail_next["getFile"] = [{"error_code": 400, "description": "Bad Request: invalid file_id"}]
        replies = await asked(telegram, 5, "what color is it?", photo)
    assert replies[-1]["text"] == "I can't find the picture this describes any more."


async def test_a_short_question_counts_in_the_askers_own_language(telegram, executor, tmp_path):
    """Too short to tell, "combien ?" from a French speaker is French: with French questions
    not offered, the person hears so, instead of BLIP-2 getting French as if it were English."""
    describer = Wrapped(executor)
    async with running_bot(telegram, tmp_path / "state", describer):
        photo, _ = await described(telegram, 5, "red")
        answers = await asked(telegram, 5, "combien ?", photo, language="fr")
    refused = "I can't take questions in this language (Français) here; please ask in English."
    assert answers[-1]["text"] == refused
    assert len(describer.submitted) == 1  # only the description


async def test_a_question_soon_after_a_photo_needs_no_reply_in_private(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor, follow_up_minutes=0.02):
        await described(telegram, 5, "red")
        for count, text in enumerate(("what color is it?", "and is it a square?", "thanks!"), start=2):
            await telegram.push(telegram.message(5, text=text))
            await telegram.wait_for("sendMessage", count=count, chat_id=5)
        await asyncio.sleep(1.3)  # past FOLLOW_UP_MINUTES (1.2 s here)
        await telegram.push(telegram.message(5, text="what color is it?"))
        [_, color, square, thanks, late] = await telegram.wait_for("sendMessage", count=5, chat_id=5)
    assert color["text"] == "Answer: Red.\nRespuesta: Rojo."
    assert square["text"] == "Answer: Yes.\nRespuesta: Sí."
    assert thanks["text"].startswith("Send me a photo") and late["text"].startswith("Send me a photo")


async def test_in_groups_only_replies_are_questions(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        await described(telegram, -100, "red", user_id=12)
        question = await telegram.push(telegram.message(-100, user_id=12, text="what color is it?"))
        await until_handled(tmp_path / "state", question)
    assert telegram.count("sendMessage", -100) == 1


async def test_a_private_conversation_about_a_picture_goes_with_each_question(telegram, executor, tmp_path):
    describer = Wrapped(executor)
    async with running_bot(telegram, tmp_path / "state", describer):
        await described(telegram, 5, "red")
        for count, text in enumerate(("what color is it?", "is it a square?"), start=2):
            await telegram.push(telegram.message(5, text=text))
            await telegram.wait_for("sendMessage", count=count, chat_id=5)
        _, group_description = await described(telegram, -100, "red", user_id=12)
        await asked(telegram, -100, "what color is it?", telegram.bot_message(group_description), user_id=12)
    first, second, in_group = (s["task"] for s in describer.submitted if isinstance(s["task"], Answer))
    assert first.earlier == () and in_group.earlier == ()  # a group's questions stand alone
    assert second.earlier == ((Question("what color is it?", "en"), "red"),)


@pytest.mark.parametrize("setting", ["missing", "empty"])
async def test_the_bot_runs_without_spanish_questions_when_their_model_is_off(
    telegram, engine_settings, tmp_path, caplog, setting
):
    off = str(tmp_path / "no-question-model") if setting == "missing" else ""
    settings = engine_settings.with_overrides(question_translation_model=off)
    engine = Engine.load(settings)
    warned = [r.getMessage() for r in caplog.records if "Questions in 'es' are off" in r.getMessage()]
    assert len(warned) == (1 if setting == "missing" else 0)
    executor = await started_executor(engine)
    try:
        async with running_bot(telegram, tmp_path / "state", executor, settings):
            photo, _ = await described(telegram, 5, "red")
            await telegram.push(
                telegram.message(5, text="¿de qué color es?", reply_to_message=photo, language="es")
            )
            await telegram.push(telegram.message(5, text="what color is it?", reply_to_message=photo))
            replies = await telegram.wait_for("sendMessage", count=3, chat_id=5, timeout=60)
    finally:
        await executor.stop()
    assert sorted(r["text"] for r in replies[1:]) == [
        "Answer: Red.\nRespuesta: Rojo.",
        "Aquí no puedo responder preguntas en este idioma (Español); pregunta en inglés, por favor.",
    ]
