"""Reading the text in pictures: a tiny Florence-2 trained to read signs, through the real
engine, executor and bot."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging

import pytest

from bot.flows.reading import mostly_text, split_text
from captioning import Busy, Engine, InferenceError, Read, RequestTimeout, Translated
from captioning.text import tidy_text
from tests.support import pictures
from tests.support.bot_harness import FAST, running_bot, started_executor
from tests.support.describers import Wrapped
from tests.support.fake_telegram import FakeTelegram, command
from tests.support.tiny_reader import PALETTE, SIGNS, sign
from tests.support.waiting import until, until_handled

GROUP = -100654
ADMIN, MEMBER = 51, 52


def keyboard(params) -> list[str]:
    markup = params["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    return [b["callback_data"] for row in markup["inline_keyboard"] for b in row]


# -- the engine --------------------------------------------------------------------------------


@pytest.mark.parametrize("palette", range(len(PALETTE)))
def test_the_reader_reads_every_sign_in_every_colour(engine, palette):
    assert engine.read([sign(text, palette) for text in SIGNS]) == SIGNS  # "" for the blank one


def test_reading_a_batch_gives_what_one_at_a_time_does(engine):
    pictures_ = [sign(text, n % len(PALETTE)) for n, text in enumerate(SIGNS * 2)]
    assert engine.read(pictures_) == [engine.read([p])[0] for p in pictures_]


def test_a_two_line_sign_keeps_its_lines(engine):
    assert engine.read([sign("BUS 42\nCITY CENTRE")]) == ["BUS 42\nCITY CENTRE"]


def test_reading_is_off_without_an_ocr_model(engine_settings):
    engine = Engine.load(engine_settings.with_overrides(ocr_model=""))
    assert not engine.capabilities.can("read") and "read" not in engine.routes


def test_a_reading_model_that_cant_be_loaded_is_one_line_and_the_rest_works(
    engine_settings, tmp_path, caplog
):
    engine = Engine.load(engine_settings.with_overrides(ocr_model=str(tmp_path / "nowhere")))
    lines = [r for r in caplog.records if "Reading text is off" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert (
        not engine.capabilities.can("read")
        and engine.describe([pictures.solid("red")])[0].english == "a red square"
    )


def test_text_keeps_its_lines_and_loses_runs_of_spaces():
    assert tidy_text("  OPEN   24\tHOURS \r\n\r\nBUS  42 ") == "OPEN 24 HOURS\n\nBUS 42"


@pytest.mark.parametrize(
    ("caption", "text"),
    [
        ("a screenshot of a phone", True),
        ("a sign on a wall", True),
        ("a menu on a table", True),
        ("a receipt from a store", True),
        ("a red square", False),
        ("a dog running on the beach", False),
        # Everyday words that say nothing about text: no read, and no "No text found" in a group.
        ("a cat sitting on a table", False),
        ("a man holding a card", False),
        ("a bird with a long bill", False),
        ("a family watching a tv screen", False),
        ("a paper bag on a chair", False),
        ("a package on a doorstep", False),
    ],
)
def test_captions_that_say_mostly_text(caption, text):
    assert mostly_text(caption) is text


def test_long_text_is_cut_at_line_breaks():
    text = "\n".join(f"line {n} " + "x" * 90 for n in range(100))  # about 10,000 characters
    parts = split_text(text, 3500)
    assert "\n".join(parts) == text and all(len(p) <= 3500 for p in parts)
    assert all(part.split("\n")[0].startswith("line ") for part in parts)  # cut between lines
    assert split_text("word " * 2000, 3500)[0].endswith("word")  # one huge line: cut at a space


# -- through the bot -----------------------------------------------------------------------------


def says(*, caption: str | None = None, text: str | None = None, read_error: Exception | None = None):
    """Results rewritten: descriptions say ``caption`` ("a sign on a wall"), and text read says
    ``text`` (or fails with ``read_error``), when given. The rest (reading, translating) is real."""

    async def rewritten(task, result):
        if isinstance(task, Read) and read_error is not None:
            raise read_error
        if isinstance(task, Read) and text is not None:
            return text
        if getattr(task, "kind", "").startswith("describe") and caption is not None:
            return Translated(caption, {k: f"[{k}] {caption}" for k in result.translations})
        return result

    return rewritten


async def test_read_text_under_a_description_reads_the_sign(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("OPEN 24 HOURS"), "PNG")))
        await telegram.push(photo)
        [description] = await telegram.wait_for("sendMessage", chat_id=5)
        assert keyboard(description) == ["again", "read", "delete"]
        await telegram.press(description, photo, "read", user_id=5)
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert replies[1]["text"] == "Text in the picture:\nOPEN 24 HOURS"
    assert replies[1]["reply_parameters"]["message_id"] == photo["message_id"]


async def test_read_reads_the_photo_it_replies_to_in_any_mode(telegram, executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    async with running_bot(telegram, tmp_path / "state", executor):
        await telegram.push(
            telegram.message(GROUP, user_id=ADMIN, text="/auto off", entities=command("/auto off"))
        )
        await telegram.wait_for("sendMessage", chat_id=GROUP)
        photo = telegram.message(
            GROUP,
            user_id=MEMBER,
            photo=telegram.photo(pictures.encode(sign("BUS 42\nCITY CENTRE", 2), "PNG")),
        )
        await telegram.push(photo)
        await telegram.push(
            telegram.message(
                GROUP, user_id=MEMBER, text="/leer", entities=command("/leer"), reply_to_message=photo
            )
        )
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
    assert replies[1]["text"] == "Text in the picture:\nBUS 42\nCITY CENTRE"


async def test_a_private_photo_captioned_read_is_read_not_described(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        update = await telegram.push(
            telegram.message(
                5,
                language="es",
                caption="Leer",
                photo=telegram.photo(pictures.encode(sign("EXIT", 1), "PNG")),
            )
        )
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(tmp_path / "state", update)
    assert reply["text"] == "Texto en la imagen:\nEXIT"
    assert telegram.count("sendMessage", 5) == 1


async def test_a_picture_that_is_mostly_text_is_read_at_once(telegram, executor, tmp_path):
    describer = Wrapped(executor, on_result=says(caption="a sign on a wall"))
    async with running_bot(telegram, tmp_path / "state", describer):
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG"))))
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert (
        replies[0]["text"].startswith("Automatic description, may be wrong")
        and "A sign on a wall." in replies[0]["text"]
    )
    assert replies[1]["text"] == "Text in the picture:\nSTOP"


@pytest.mark.parametrize("chat", [5, GROUP])
async def test_an_automatic_read_that_finds_no_text_says_nothing(telegram, executor, tmp_path, chat):
    describer = Wrapped(executor, on_result=says(caption="a sign on a wall", text=""))
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = await telegram.push(
            telegram.message(chat, photo=telegram.photo(pictures.encode(sign(""), "PNG")))
        )
        [description] = await telegram.wait_for("sendMessage", chat_id=chat)
        await until_handled(tmp_path / "state", photo)
    assert "A sign on a wall." in description["text"]
    assert telegram.count("sendMessage", chat) == 1  # nobody asked: no "No text found"


@pytest.mark.parametrize("error", [Busy("full"), RequestTimeout("slow"), InferenceError("the model failed")])
async def test_an_automatic_read_that_fails_leaves_one_description(
    telegram, executor, tmp_path, error, caplog
):
    describer = Wrapped(executor, on_result=says(caption="a sign on a wall", read_error=error))
    state = tmp_path / "state"
    async with running_bot(telegram, state, describer):
        photo = await telegram.push(
            telegram.message(GROUP, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        )
        await telegram.wait_for("sendMessage", chat_id=GROUP)
        await until_handled(state, photo)
        await asyncio.sleep(0.5)  # a replay of the update would describe it again
    assert telegram.count("sendMessage", GROUP) == 1  # the description, once; the button stays
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]  # nor set aside


async def test_describe_again_keeps_the_read_button(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        await telegram.push(photo)
        [description] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.press(description, photo, "again", user_id=5)
        [edit] = await telegram.wait_for("editMessageText", chat_id=5)
    assert keyboard(edit) == ["again", "read", "delete"]


async def test_the_signs_in_an_album_are_read_after_its_answer_in_one_message(telegram, executor, tmp_path):
    describer = Wrapped(executor, on_result=says(caption="a sign on a wall"))
    photos = [
        telegram.message(
            5, media_group_id="signs", photo=telegram.photo(pictures.encode(sign(text, n), "PNG"))
        )
        for n, text in enumerate(["STOP", "EXIT"])
    ]
    async with running_bot(telegram, tmp_path / "state", describer):
        ids = [await telegram.push(p) for p in photos]
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
        await until_handled(tmp_path / "state", *ids)
    assert replies[0]["text"].startswith("Automatic descriptions, may be wrong")
    assert replies[1]["text"] == "Text in the pictures:\n1. STOP\n2. EXIT"  # numbered as in the answer
    assert replies[1]["reply_parameters"]["message_id"] == photos[0]["message_id"]
    assert telegram.count("sendMessage", 5) == 2  # at most two automatic messages for an album


async def test_read_and_translate_are_the_askers_and_a_read_is_done_once(telegram, executor, tmp_path):
    describer = Wrapped(executor, on_result=says(text="a red square"))
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = telegram.message(
            GROUP, user_id=MEMBER, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG"))
        )
        await telegram.push(photo)
        [description] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        await telegram.press(description, photo, "read", user_id=ADMIN + 100)  # not theirs
        [refused] = await telegram.wait_for("answerCallbackQuery")
        await telegram.press(description, photo, "read", user_id=MEMBER)
        [_, text] = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
        await telegram.press(text, photo, "translate", user_id=ADMIN + 100)
        await telegram.wait_for("answerCallbackQuery", count=3)
        await telegram.press(description, photo, "read", user_id=MEMBER)  # again: from the cache
        await telegram.wait_for("sendMessage", count=3, chat_id=GROUP)
    assert refused["show_alert"] and "only" in refused["text"].lower()
    assert telegram.sent("answerCallbackQuery")[2]["show_alert"]  # Translate: not theirs either
    assert telegram.count("sendMessage", GROUP) == 3  # no translation was sent
    assert [type(s["task"]).__name__ for s in describer.submitted] == ["Describe", "Read"]


async def test_autoread_off_leaves_it_to_the_button_and_only_admins_change_it(telegram, executor, tmp_path):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    describer = Wrapped(executor, on_result=says(caption="a sign on a wall"))
    async with running_bot(telegram, tmp_path / "state", describer):
        await telegram.push(
            telegram.message(GROUP, user_id=MEMBER, text="/autoread off", entities=command("/autoread off"))
        )
        [refusal] = await telegram.wait_for("sendMessage", chat_id=GROUP)
        await telegram.push(
            telegram.message(GROUP, user_id=ADMIN, text="/autoread off", entities=command("/autoread off"))
        )
        [_, done] = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
        photo = await telegram.push(
            telegram.message(
                GROUP, user_id=MEMBER, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG"))
            )
        )
        await telegram.wait_for("sendMessage", count=3, chat_id=GROUP)
        await until_handled(tmp_path / "state", photo)
    assert refusal["text"] == "Only this group's admins can change that."
    assert done["text"].startswith("Autoread is off")
    assert telegram.count("sendMessage", GROUP) == 3  # the description, and no text read out


async def test_no_text_is_said_plainly(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign(""), "PNG")))  # a blank board
        await telegram.push(photo)
        [description] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.press(description, photo, "read", user_id=5)
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert replies[1]["text"] == "No text found in this picture."


async def test_a_long_text_is_sent_as_a_file_too(telegram, executor, tmp_path):
    long_text = "\n".join(f"{n}. " + "A line of a long letter, read out. " * 3 for n in range(200))
    describer = Wrapped(executor, on_result=says(text=long_text))
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        await telegram.push(photo)
        await telegram.push(
            telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
        )
        [document] = await telegram.wait_for("sendDocument", chat_id=5)
        replies = telegram.sent("sendMessage", chat_id=5)
    first = next(r["text"] for r in replies if r["text"].startswith("Text in the picture:"))
    assert len(first) <= 4096 and long_text.startswith(first.removeprefix("Text in the picture:\n"))
    assert document["document"]["filename"] == "text.txt"
    assert document["document"]["data"].decode() == long_text
    assert document["caption"] == f"The whole text ({len(long_text)} characters), as a file."


async def test_english_text_can_be_translated_into_the_chats_languages(telegram, executor, tmp_path):
    describer = Wrapped(executor, on_result=says(text="a red square"))  # words the tiny Marian knows
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        await telegram.push(
            telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
        )
        [text] = await telegram.wait_for("sendMessage", chat_id=5)
        assert keyboard(text) == ["translate", "delete"]
        await telegram.press(text, photo, "translate", user_id=5)
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert text["text"] == "Text in the picture:\na red square"  # verbatim first
    assert replies[1]["text"] == "Español: un cuadrado rojo"


async def test_a_menu_is_translated_keeping_its_lines(telegram, executor, tmp_path):
    describer = Wrapped(executor, on_result=says(text="a red square\n\na blue square"))
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        await telegram.push(
            telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
        )
        [text] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.press(text, photo, "translate", user_id=5)
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert replies[1]["text"] == "Español:\nun cuadrado rojo\n\nun cuadrado azul"


async def test_reading_off_means_no_button_and_read_says_so(telegram, engine_settings, tmp_path):
    engine = Engine.load(engine_settings.with_overrides(ocr_model=""))
    executor = await started_executor(engine)
    try:
        async with running_bot(telegram, tmp_path / "state", executor):
            photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
            await telegram.push(photo)
            [description] = await telegram.wait_for("sendMessage", chat_id=5)
            await telegram.push(
                telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
            )
            replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    finally:
        await executor.stop()
    assert keyboard(description) == ["again", "delete"]
    assert replies[1]["text"] == "Reading the text in pictures isn't available here."
    commands = [c["command"] for c in telegram.sent("setMyCommands")[0]["commands"]]
    assert "read" not in commands and "autoread" not in commands


async def test_reading_goes_through_the_queue_and_a_larger_photo_size(telegram, executor, tmp_path):
    describer = Wrapped(executor)
    async with running_bot(telegram, tmp_path / "state", describer):
        sizes = telegram.photo(
            pictures.encode(sign("STOP"), "PNG"), [(90, 60), (320, 213), (1280, 853), (2560, 1706)]
        )
        photo = telegram.message(5, photo=sizes)
        await telegram.push(
            telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
        )
        await telegram.wait_for("sendMessage", chat_id=5)
    assert [type(keys["task"]).__name__ for keys in describer.submitted] == ["Read"]
    fetched = [c["file_id"] for c in telegram.sent("getFile")]
    assert fetched == [sizes[2]["file_id"]]  # the largest up to 2048 px, not the 2560 one


async def test_the_cli_reads_and_describes(tmp_path, tiny_model_dirs, monkeypatch, capsys):
    from captioning.__main__ import main

    for name, value in {**tiny_model_dirs.env(), "DEVICE": "cpu"}.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "menu.png").write_bytes(pictures.encode(sign("OPEN 24 HOURS"), "PNG"))
    assert main(["--json", "--read", str(tmp_path / "menu.png")]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"file": str(tmp_path / "menu.png"), "text": "OPEN 24 HOURS"}
    ]
    assert main(["--describe", "--read", str(tmp_path / "menu.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(tmp_path / "menu.png") and out[1].startswith("  English: ")
    assert out[-1] == "  Text: OPEN 24 HOURS"


async def test_text_read_out_pings_nobody_runs_no_command_and_unfurls_no_link(telegram, executor, tmp_path):
    # A photo of a poster: the bot repeats it, and must not mention people, offer commands to
    # tap, or show a preview card. The words stay as they are for a screen reader.
    poster = "Party! Tell @everyone\n/start at 9\nhttps://tickets.example/buy"
    describer = Wrapped(executor, on_result=says(text=poster))
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(
            telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
        )
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    text = reply["text"]
    assert "@\u2060everyone" in text and "\n/\u2060start at 9" in text
    assert text.replace("\u2060", "") == f"Text in the picture:\n{poster}"
    assert reply["link_preview_options"] == {"is_disabled": True}


async def test_no_message_goes_past_telegrams_limit(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor) as runner:
        await runner.application.bot.send_message(5, "word " * 2000)
        await runner.application.bot.send_document(5, b"x", filename="x.txt", caption="c" * 2000)
    [sent] = telegram.sent("sendMessage", chat_id=5)
    [document] = telegram.sent("sendDocument", chat_id=5)
    assert len(sent["text"]) == 4096 and sent["text"].endswith("…")
    assert len(document["caption"]) == 1024


async def test_a_press_retried_after_its_answer_still_does_its_action(telegram, executor, tmp_path):
    # The press is answered, then its reply doesn't go through (502): the retry answers again,
    # which Telegram refuses (one answer a press), and the text must still be read out.
    quick = dataclasses.replace(FAST, retry_delays_s=(0.2,))
    async with running_bot(telegram, tmp_path / "state", executor, timings=quick):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        await telegram.push(photo)
        [description] = await telegram.wait_for("sendMessage", chat_id=5)
        telegram.fail_next["sendMessage"] = [FakeTelegram.bad_gateway()]
        press = await telegram.press(description, photo, "read", user_id=5)
        replies = await telegram.wait_for("sendMessage", count=3, chat_id=5)
        await until_handled(tmp_path / "state", press)
    assert replies[2]["text"] == "Text in the picture:\nSTOP"
    assert len(telegram.sent("answerCallbackQuery")) == 2  # answered, and refused the second time


async def test_an_albums_text_is_one_message_and_a_crash_while_it_is_sent_loses_and_repeats_nothing(
    telegram, executor, tmp_path
):
    # The album's answer goes through; its text read out doesn't (Telegram fails): every photo
    # of the album stays pending, and after a restart the text comes, once, and the answer isn't
    # sent again.
    describer = Wrapped(executor, on_result=says(caption="a sign on a wall"))
    state = tmp_path / "state"
    photos = [
        telegram.message(
            -4242, media_group_id="signs", photo=telegram.photo(pictures.encode(sign(t, n), "PNG"))
        )
        for n, t in enumerate(["STOP", "EXIT"])
    ]
    no_retry = dataclasses.replace(FAST, retry_delays_s=(3600.0,))
    async with running_bot(telegram, state, describer, timings=no_retry) as runner:
        ids = [await telegram.push(p) for p in photos]
        await telegram.wait_for("sendMessage", chat_id=-4242)  # the album's answer
        telegram.fail_next["sendMessage"] = [FakeTelegram.bad_gateway()]  # the text's message
        await telegram.wait_for("sendMessage", count=2, chat_id=-4242)
        await until(lambda: set(runner.svc.journal.retrying) == set(ids), "the album kept for later")
    async with running_bot(telegram, state, describer):  # the restart replays the whole album
        await until_handled(state, *ids)
    sent = [m["text"] for m in telegram.sent("sendMessage", chat_id=-4242)]
    assert sent[0].startswith("Automatic descriptions, may be wrong") and sent.count(sent[0]) == 1
    assert sent[1] == sent[2] == "Text in the pictures:\n1. STOP\n2. EXIT"  # failed once, then sent
    assert len(sent) == 3


async def test_delete_under_a_text_in_parts_removes_every_part_and_the_file(telegram, executor, tmp_path):
    three_parts = "\n".join(f"{n}. " + "A line of a long letter, read out. " * 3 for n in range(80))
    describer = Wrapped(executor, on_result=says(text=three_parts))
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        await telegram.push(photo)
        await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.push(
            telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
        )
        sent = await telegram.wait_for("sendMessage", count=4, chat_id=5)
        parts = sent[1:]
        assert [p.get("reply_markup") is not None for p in parts] == [False, False, True]
        await telegram.press(parts[-1], photo, "delete", user_id=5)
        deleted = await telegram.wait_for("deleteMessage", count=3)
    assert sorted(d["message_id"] for d in deleted) == sorted(telegram.message_id_of(p) for p in parts)


async def test_a_text_in_parts_that_fails_halfway_goes_on_from_the_part_not_sent(
    telegram, executor, tmp_path
):
    three_parts = "\n".join(f"{n}. " + "A line of a long letter, read out. " * 3 for n in range(80))
    describer = Wrapped(executor, on_result=says(text=three_parts))
    quick = dataclasses.replace(FAST, retry_delays_s=(0.2,))
    async with running_bot(telegram, tmp_path / "state", describer, timings=quick):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        await telegram.push(photo)
        await telegram.wait_for("sendMessage", chat_id=5)
        read = telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
        await telegram.push(read)
        await telegram.wait_for("sendMessage", count=2, chat_id=5)  # the first part
        telegram.fail_next["sendMessage"] = [FakeTelegram.bad_gateway()]  # the second one
        sent = await telegram.wait_for("sendMessage", count=5, chat_id=5)
    texts = [s["text"] for s in sent[1:]]
    assert texts[0].startswith("Text in the picture:") and texts[1] == texts[2]  # the failed part, again
    assert texts.count(texts[0]) == 1 and len(texts) == 4  # nothing else sent twice
    assert "".join(texts[:2] + texts[3:]).count("79. ") == 1


async def test_the_same_read_again_points_to_the_text_already_read_out(telegram, executor, tmp_path):
    three_parts = "\n".join(f"{n}. " + "A line of a long letter, read out. " * 3 for n in range(80))
    describer = Wrapped(executor, on_result=says(text=three_parts))
    async with running_bot(telegram, tmp_path / "state", describer):
        photo = telegram.message(-777, user_id=31, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        await telegram.push(photo)
        await telegram.wait_for("sendMessage", chat_id=-777)
        for _ in range(5):
            await telegram.push(
                telegram.message(
                    -777, user_id=31, text="/read", entities=command("/read"), reply_to_message=photo
                )
            )
        sent = await telegram.wait_for("sendMessage", count=1 + 3 + 4, chat_id=-777)
        await telegram.settle(0.5)
    first_part = sent[1]
    pointers = sent[4:]
    assert all(p["text"] == "I read its text out just above." for p in pointers)
    assert all(p["reply_parameters"]["message_id"] == telegram.message_id_of(first_part) for p in pointers)
    assert telegram.count("sendMessage", -777) == 8  # not 1 + 5 x 3
