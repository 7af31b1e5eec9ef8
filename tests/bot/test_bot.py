"""The bot through real HTTP: the Application polls FakeTelegram, the engine is the tiny one."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot.pictures import choose_photo_size
from captioning import Describe
from tests.support import pictures
from tests.support.bot_harness import FAST, running_bot
from tests.support.describers import Wrapped, slowed
from tests.support.fake_telegram import FakeTelegram, command
from tests.support.waiting import until_handled

GROUP = -100123
ADMIN, MEMBER = 11, 12


@pytest.fixture
async def bot(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor) as runner:
        yield runner


def reply_to(params) -> int:
    return params["reply_parameters"]["message_id"]


# -- private chats ---------------------------------------------------------------------------


async def test_a_red_photo_gets_both_descriptions_as_a_reply(telegram, executor, tmp_path):
    # "typing…" waits a while first: an answer quicker than that goes without it.
    slow_to_type = dataclasses.replace(FAST, typing_after_s=30.0)
    async with running_bot(telegram, tmp_path / "state", executor, timings=slow_to_type):
        message = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(message)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert reply["text"] == (
        "Automatic description, may be wrong / Descripción automática, puede fallar\n"
        "English: A red square.\nEspañol: Un cuadrado rojo."
    )
    assert reply_to(reply) == message["message_id"]
    assert "parse_mode" not in reply  # plain text: nothing in a caption can break it
    assert telegram.sent("sendChatAction") == []  # answered before "typing…" was due


async def test_the_smallest_photo_size_the_model_can_use_is_the_one_downloaded(telegram, bot):
    # The tiny model looks at 64 px. Sizes arrive out of order; only 90 x 90 is fetched.
    sizes = telegram.photo(pictures.jpeg("blue"), [(800, 600), (60, 45), (90, 68), (320, 240)])
    wanted = next(s for s in sizes if s["width"] == 320)
    small = next(s for s in sizes if s["width"] == 90)  # short side 68 >= 64
    telegram.files[small["file_id"]] = pictures.jpeg("green")
    await telegram.push(telegram.message(5, photo=sizes))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert "A green square." in reply["text"]
    assert [c["file_id"] for c in telegram.sent("download")] == [small["file_id"]]
    assert wanted["file_id"] not in [c["file_id"] for c in telegram.sent("getFile")]


def test_choose_photo_size_falls_back_to_the_largest_when_none_is_big_enough():
    from telegram import PhotoSize

    sizes = (PhotoSize("a", "a", 50, 40), PhotoSize("b", "b", 30, 20))
    assert choose_photo_size(sizes, 224).file_id == "a"
    sizes += (PhotoSize("c", "c", 1280, 960), PhotoSize("d", "d", 320, 240))
    assert choose_photo_size(sizes, 224).file_id == "d"


async def test_a_picture_sent_as_a_file_is_described_whatever_it_claims(telegram, bot):
    document = telegram.document(pictures.webp("yellow"), name="report.pdf", mime="application/pdf")
    await telegram.push(telegram.message(5, document=document))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert "A yellow square." in reply["text"] and "Un cuadrado amarillo." in reply["text"]


async def test_a_file_over_20_mb_is_explained_without_a_download(telegram, bot):
    document = telegram.document(pictures.jpeg(), size=25 * 1024 * 1024)
    await telegram.push(telegram.message(5, document=document))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert "20 MB" in reply["text"]
    assert telegram.sent("getFile") == [] and telegram.sent("download") == []


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (pictures.truncated_jpeg, "damaged"),
        (lambda: b"", "empty"),
        (pictures.pdf, "PDF"),
        (pictures.svg, "SVG"),
        (lambda: b"hello, not a picture" * 10, "isn't a picture"),
        (lambda: pictures.huge_png(30_000, 30_000), "too big"),
    ],
    ids=["truncated", "empty", "pdf", "svg", "text", "bomb"],
)
async def test_bad_files_get_a_short_clear_message(telegram, bot, make, words):
    await telegram.push(telegram.message(5, document=telegram.document(make(), name="x.jpg")))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert words in reply["text"]
    assert len(reply["text"]) < 200 and "Traceback" not in reply["text"] and "Error" not in reply["text"]


async def test_bad_files_are_explained_in_spanish_to_spanish_speakers(telegram, bot):
    await telegram.push(telegram.message(5, language="es", document=telegram.document(pictures.pdf())))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert reply["text"] == "Esto es un documento PDF, no una imagen. Envía una foto."


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (
            {
                "sticker": {
                    "file_id": "s",
                    "file_unique_id": "s",
                    "width": 512,
                    "height": 512,
                    "is_animated": False,
                    "is_video": False,
                    "type": "regular",
                }
            },
            "stickers",
        ),
        (
            {
                "animation": {"file_id": "a", "file_unique_id": "a", "width": 1, "height": 1, "duration": 1},
                "document": {"file_id": "a", "file_unique_id": "a"},
            },
            "animations",
        ),
        (
            {"video": {"file_id": "v", "file_unique_id": "v", "width": 1, "height": 1, "duration": 1}},
            "videos",
        ),
    ],
    ids=["sticker", "animation", "video"],
)
async def test_stickers_animations_and_videos_get_a_polite_not_yet(telegram, bot, content, kind):
    await telegram.push(telegram.message(5, **content))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert reply["text"].startswith(f"I can't describe {kind} yet")
    assert telegram.sent("getFile") == []


async def test_the_reply_stays_in_the_photos_topic(telegram, executor, tmp_path):
    timings = dataclasses.replace(FAST, typing_after_s=0.0)
    async with running_bot(
        telegram, tmp_path / "state", Wrapped(executor, on_result=slowed(0.5)), timings=timings
    ):
        message = telegram.message(
            GROUP, photo=telegram.photo(pictures.jpeg("red")), message_thread_id=77, is_topic_message=True
        )
        await telegram.push(message)
        [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
    assert reply["message_thread_id"] == 77
    assert reply_to(reply) == message["message_id"]
    assert telegram.sent("sendChatAction", chat_id=GROUP)[0]["message_thread_id"] == 77


async def test_typing_is_refreshed_in_private_until_the_reply_is_sent(telegram, executor, tmp_path):
    timings = dataclasses.replace(FAST, typing_after_s=0.0, typing_refresh_s=0.05)
    gate = asyncio.Event()
    async with running_bot(
        telegram, tmp_path / "state", Wrapped(executor, on_result=slowed(gate=gate)), timings=timings
    ):
        update = await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        await telegram.wait_for("sendChatAction", count=3, chat_id=5)  # refreshed while it waits
        gate.set()
        await telegram.wait_for("sendMessage", chat_id=5)
        typing_before_reply = len(telegram.sent("sendChatAction", chat_id=5))
        await until_handled(tmp_path / "state", update)
        await telegram.push(telegram.message(6, text="hello"))  # a later update, answered
        await telegram.wait_for("sendMessage", chat_id=6)
    assert telegram.sent("sendChatAction", chat_id=5)[0]["action"] == "typing"
    assert len(telegram.sent("sendChatAction", chat_id=5)) == typing_before_reply  # stopped after


async def test_typing_is_sent_once_per_burst_in_a_group(telegram, executor, tmp_path):
    # A group has 20 messages a minute: chat actions count, so one per burst of photos.
    timings = dataclasses.replace(FAST, typing_after_s=0.0, typing_refresh_s=0.05)
    gate = asyncio.Event()
    async with running_bot(
        telegram, tmp_path / "state", Wrapped(executor, on_result=slowed(gate=gate)), timings=timings
    ):
        for color in ("red", "green", "blue"):
            await telegram.push(
                telegram.message(GROUP, user_id=MEMBER, photo=telegram.photo(pictures.jpeg(color)))
            )
        await telegram.wait_for("sendChatAction", chat_id=GROUP)
        await telegram.wait_for("getFile", count=3)  # all three are in flight
        gate.set()
        await telegram.wait_for("sendMessage", count=3, chat_id=GROUP)
    assert len(telegram.sent("sendChatAction", chat_id=GROUP)) == 1


# -- groups ----------------------------------------------------------------------------------


async def test_in_groups_every_photo_is_described_while_auto_is_on(telegram, bot):
    message = telegram.message(GROUP, user_id=MEMBER, photo=telegram.photo(pictures.jpeg("blue")))
    await telegram.push(message)
    [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
    assert "A blue square." in reply["text"] and reply_to(reply) == message["message_id"]


async def test_in_groups_files_that_clearly_are_not_pictures_are_not_downloaded(telegram, bot):
    for name, mime in (("holiday.zip", "application/zip"), ("clip.mp4", "video/mp4"), ("a.zip", "")):
        document = telegram.document(pictures.jpeg(), name=name, mime=mime, size=15_000_000)
        await telegram.push(telegram.message(GROUP, user_id=MEMBER, document=document))
    for name, mime in (("IMG_1.HEIC", "application/octet-stream"), ("scan", ""), ("x.bin", "image/png")):
        document = telegram.document(pictures.jpeg("red"), name=name, mime=mime)
        await telegram.push(telegram.message(GROUP, user_id=MEMBER, document=document))
    replies = await telegram.wait_for("sendMessage", count=3, chat_id=GROUP)
    await telegram.settle(0.3)
    assert all("A red square." in r["text"] for r in replies)
    assert telegram.count("getFile") == 3  # only the files that may be pictures


async def test_in_groups_broken_and_unsupported_files_are_ignored_silently(telegram, bot):
    await telegram.push(telegram.message(GROUP, user_id=MEMBER, document=telegram.document(pictures.pdf())))
    await telegram.push(
        telegram.message(GROUP, user_id=MEMBER, document=telegram.document(b"", name="e.png"))
    )
    await telegram.push(
        telegram.message(GROUP, user_id=MEMBER, document=telegram.document(pictures.jpeg(), size=30_000_000))
    )
    await telegram.push(
        telegram.message(
            GROUP,
            user_id=MEMBER,
            video={"file_id": "v", "file_unique_id": "v", "width": 1, "height": 1, "duration": 1},
        )
    )
    await telegram.push(telegram.message(GROUP, user_id=MEMBER, photo=telegram.photo(pictures.jpeg("red"))))
    [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)  # only the good photo
    await until_handled(bot.svc.settings.state_dir, *range(1, 6))  # every one of them handled
    assert len(telegram.sent("sendMessage", chat_id=GROUP)) == 1 and "A red square." in reply["text"]


async def test_only_admins_change_group_settings(telegram, bot):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    await telegram.push(
        telegram.message(GROUP, user_id=MEMBER, text="/auto off", entities=command("/auto off"))
    )
    [refusal] = await telegram.wait_for("sendMessage", chat_id=GROUP)
    assert refusal["text"] == "Only this group's admins can change that."

    await telegram.push(
        telegram.message(GROUP, user_id=ADMIN, text="/auto off", entities=command("/auto off"))
    )
    [_, done] = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
    assert done["text"].startswith("Auto is off")
    asked = [(c["chat_id"], c["user_id"]) for c in telegram.sent("getChatMember")]
    assert asked == [(GROUP, MEMBER), (GROUP, ADMIN)]

    # Auto off: photos wait for /describe.
    photo = telegram.message(GROUP, user_id=MEMBER, photo=telegram.photo(pictures.jpeg("yellow")))
    await until_handled(bot.svc.settings.state_dir, await telegram.push(photo))
    assert len(telegram.sent("sendMessage", chat_id=GROUP)) == 2
    await telegram.push(
        telegram.message(
            GROUP, user_id=MEMBER, text="/describe", entities=command("/describe"), reply_to_message=photo
        )
    )
    described = (await telegram.wait_for("sendMessage", count=3, chat_id=GROUP))[2]
    assert "A yellow square." in described["text"]
    assert reply_to(described) == photo["message_id"]


async def test_the_group_owner_and_anonymous_admins_may_change_settings(telegram, bot):
    telegram.members[(GROUP, ADMIN)] = "creator"
    await telegram.push(telegram.message(GROUP, user_id=ADMIN, text="/lang es", entities=command("/lang es")))
    await telegram.push(
        telegram.message(
            GROUP,
            user_id=1087968824,
            text="/auto off",
            entities=command("/auto off"),
            sender_chat={"id": GROUP, "type": "supergroup", "title": "Group"},
        )
    )
    replies = await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
    texts = sorted(r["text"] for r in replies)
    assert texts[0].startswith("Auto is off") and texts[1].startswith("Descriptions here will be in")


async def test_describe_explains_problems_even_in_groups(telegram, bot):
    broken = telegram.message(GROUP, user_id=MEMBER, document=telegram.document(pictures.truncated_jpeg()))
    await telegram.push(broken)
    await telegram.push(
        telegram.message(
            GROUP, user_id=MEMBER, text="/describe", entities=command("/describe"), reply_to_message=broken
        )
    )
    [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
    assert "damaged" in reply["text"]


async def test_describe_without_a_photo_says_how_to_use_it(telegram, bot):
    await telegram.push(
        telegram.message(GROUP, user_id=MEMBER, text="/describe", entities=command("/describe"))
    )
    [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
    assert reply["text"] == "Reply to a photo with /describe and I'll describe it."


# -- settings, help, commands ----------------------------------------------------------------


async def test_lang_is_kept_across_restarts(telegram, executor, tmp_path):
    state = tmp_path / "state"
    async with running_bot(telegram, state, executor):
        await telegram.push(telegram.message(5, text="/lang es", entities=command("/lang es")))
        await telegram.wait_for("sendMessage", chat_id=5)
    async with running_bot(telegram, state, executor):
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert replies[1]["text"] == "Descripción automática, puede fallar: Un cuadrado rojo."


async def test_lang_en_gives_only_english_and_bad_values_show_usage(telegram, bot):
    await telegram.push(telegram.message(5, text="/lang fr", entities=command("/lang fr")))
    [usage] = await telegram.wait_for("sendMessage", chat_id=5)
    assert usage["text"] == "I can't describe in fr. I can in: en es."
    await telegram.push(telegram.message(5, text="/lang en", entities=command("/lang en")))
    await telegram.wait_for("sendMessage", count=2, chat_id=5)
    await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("green"))))
    replies = await telegram.wait_for("sendMessage", count=3, chat_id=5)
    assert replies[2]["text"] == "Automatic description, may be wrong: A green square."


@pytest.mark.parametrize(
    ("language", "expected"),
    [("es-MX", "Describo fotos"), ("en", "I describe photos"), ("de", "I describe photos")],
)
async def test_help_speaks_the_users_language(telegram, bot, language, expected):
    await telegram.push(telegram.message(5, language=language, text="/start", entities=command("/start")))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert reply["text"].startswith(expected)


async def test_help_covers_commands_privacy_and_group_admin_rights(telegram, bot):
    await telegram.push(telegram.message(5, text="/help", entities=command("/help")))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    for words in (
        "/describe",
        "/read",
        "/auto",
        "/autoread",
        "/lang",
        "never stored",
        "30 days",
        "text I read from pictures, 24 hours",
        "/forget",
        "admin",
        "privacy mode",
    ):
        assert words in reply["text"]


async def test_commands_are_registered_in_both_languages(telegram, bot):
    calls = telegram.sent("setMyCommands")
    assert [c.get("language_code") for c in calls] == [None, "es"]
    assert [c["command"] for c in calls[0]["commands"]] == [
        "describe",
        "read",
        "auto",
        "autoread",
        "detail",
        "lang",
        "forget",
        "help",
    ]
    assert [c["command"] for c in calls[1]["commands"]] == [
        "describe",
        "leer",
        "auto",
        "autoread",
        "detalle",
        "lang",
        "olvidar",
        "help",
    ]
    assert calls[1]["commands"][0]["description"].startswith("Describe la foto")


# -- Telegram's errors -----------------------------------------------------------------------


async def test_a_429_is_waited_out_and_the_reply_still_arrives(telegram, bot):
    telegram.fail_next["sendMessage"] = [FakeTelegram.too_many_requests(retry_after=1)]
    await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
    attempts = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert attempts[0]["text"] == attempts[1]["text"]
    sends = [c for c in telegram.calls if c.method == "sendMessage"]
    assert sends[1].at - sends[0].at >= 0.9  # waited as told


async def test_a_user_who_blocked_the_bot_does_not_stop_it(telegram, bot):
    telegram.fail_next["sendMessage"] = [FakeTelegram.blocked()]
    await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
    await telegram.wait_for("sendMessage", chat_id=5)
    await telegram.push(telegram.message(6, photo=telegram.photo(pictures.jpeg("blue"))))
    [reply] = await telegram.wait_for("sendMessage", chat_id=6)
    assert "A blue square." in reply["text"]


async def test_odd_updates_do_not_stop_the_bot(telegram, bot):
    await telegram.push(telegram.message(5, text="just chatting"))
    await telegram.push({"message_id": 1, "date": 0, "chat": {"id": 5, "type": "private"}})  # no sender
    await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"), [(1, 1)])))
    await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("blue"))))
    replies = await telegram.wait_for("sendMessage", count=4, chat_id=5)
    assert [r["text"].startswith("Send me a photo and I'll describe it.") for r in replies[:2]] == [
        True,
        True,
    ]
    assert any("A blue square." in r["text"] for r in replies)


# -- what hardening added ----------------------------------------------------------------------


async def test_a_file_refused_once_is_refused_again_without_a_download(telegram, bot):
    document = telegram.document(pictures.pdf(), name="a.jpg")
    await telegram.push(telegram.message(5, document=document))
    await telegram.wait_for("sendMessage", chat_id=5)
    await telegram.push(telegram.message(5, document=document))  # the same file, sent again
    replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert replies[0]["text"] == replies[1]["text"] and replies[1]["text"].startswith("This is a PDF")
    assert telegram.count("download") == 1


async def test_a_file_telegram_calls_too_big_is_explained(telegram, bot):
    document = telegram.document(pictures.jpeg(), size=None)
    document.pop("file_size")  # its size unknown until getFile says
    telegram.file_sizes[document["file_id"]] = 25 * 1024 * 1024
    await telegram.push(telegram.message(5, document=document))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert "20 MB" in reply["text"] and telegram.count("download") == 0


async def test_auto_is_kept_across_restarts(telegram, executor, tmp_path):
    state = tmp_path / "state"
    async with running_bot(telegram, state, executor):
        await telegram.push(
            telegram.message(
                GROUP,
                user_id=1087968824,
                text="/auto off",
                entities=command("/auto off"),
                sender_chat={"id": GROUP, "type": "supergroup", "title": "G"},
            )
        )
        await telegram.wait_for("sendMessage", chat_id=GROUP)
    async with running_bot(telegram, state, executor):
        photo = await telegram.push(
            telegram.message(GROUP, user_id=MEMBER, photo=telegram.photo(pictures.jpeg("red")))
        )
        await until_handled(state, photo)
    assert telegram.count("sendMessage", GROUP) == 1  # only the "/auto off" answer


async def test_a_group_that_becomes_a_supergroup_keeps_its_settings(telegram, bot):
    old, new = -4000, -1004000
    await telegram.push(
        telegram.message(
            old,
            user_id=1087968824,
            chat_type="group",
            text="/auto off",
            entities=command("/auto off"),
            sender_chat={"id": old, "type": "group", "title": "G"},
        )
    )
    await telegram.wait_for("sendMessage", chat_id=old)
    await telegram.push(telegram.message(old, chat_type="group", migrate_to_chat_id=new))
    moved = await telegram.push(telegram.message(new, migrate_from_chat_id=old))
    photo = await telegram.push(
        telegram.message(new, user_id=MEMBER, photo=telegram.photo(pictures.jpeg("red")))
    )
    await until_handled(bot.svc.settings.state_dir, moved, photo)
    assert telegram.count("sendMessage", new) == 0  # auto is still off, in the supergroup


async def test_a_channel_can_turn_auto_off(telegram, bot):
    channel = {"id": -1007, "type": "channel", "title": "News"}
    post = {"message_id": 1, "date": 0, "chat": channel, "sender_chat": channel}
    await telegram.push({**post, "text": "/auto off", "entities": command("/auto off")}, kind="channel_post")
    [answer] = await telegram.wait_for("sendMessage", chat_id=-1007)
    photo = await telegram.push(
        {**post, "message_id": 2, "photo": telegram.photo(pictures.jpeg("red"))}, kind="channel_post"
    )
    await until_handled(bot.svc.settings.state_dir, photo)
    assert answer["text"].startswith("Auto is off") and telegram.count("sendMessage", -1007) == 1


async def test_shared_stand_in_senders_have_a_quota_per_chat(telegram, executor, tmp_path):
    describer = Wrapped(executor)
    async with running_bot(telegram, tmp_path / "state", describer):
        for chat in (-201, -202):
            sender = {"id": chat, "type": "supergroup", "title": "G"}
            await telegram.push(
                telegram.message(
                    chat, user_id=1087968824, sender_chat=sender, photo=telegram.photo(pictures.jpeg("red"))
                )
            )
        await telegram.push(
            telegram.message(-203, user_id=777000, photo=telegram.photo(pictures.jpeg("blue")))
        )
        for chat in (-201, -202, -203):
            await telegram.wait_for("sendMessage", chat_id=chat)
    owners = sorted(str(keys["owner"]) for keys in describer.submitted)
    assert owners == sorted(str(o) for o in [(1087968824, -201), (1087968824, -202), (777000, -203)])


async def test_describe_counts_against_whoever_asked(telegram, executor, tmp_path):
    describer = Wrapped(executor)
    async with running_bot(telegram, tmp_path / "state", describer):
        await telegram.push(
            telegram.message(GROUP, user_id=ADMIN, text="/auto off", entities=command("/auto off"))
        )
        telegram.members[(GROUP, ADMIN)] = "administrator"
        await telegram.wait_for("sendMessage", chat_id=GROUP)
        photo = telegram.message(GROUP, user_id=MEMBER, photo=telegram.photo(pictures.jpeg("red")))
        await telegram.push(photo)
        await telegram.push(
            telegram.message(
                GROUP, user_id=ADMIN, text="/describe", entities=command("/describe"), reply_to_message=photo
            )
        )
        await telegram.wait_for("sendMessage", count=2, chat_id=GROUP)
    assert [keys["owner"] for keys in describer.submitted] == [ADMIN]


async def test_lang_from_a_member_is_refused_before_anything_they_wrote_is_repeated(telegram, bot):
    words = "@everyone https://example.com/spam"
    await telegram.push(
        telegram.message(GROUP, user_id=MEMBER, text=f"/lang {words}", entities=command("/lang"))
    )
    [reply] = await telegram.wait_for("sendMessage", chat_id=GROUP)
    assert reply["text"] == "Only this group's admins can change that."


async def test_lang_never_repeats_what_isnt_a_language_code(telegram, bot):
    huge = "/lang " + " ".join(["@everyone", "https://example.com", *(["x" * 40] * 120)])
    await telegram.push(telegram.message(5, text=huge, entities=command("/lang")))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert (
        "@everyone" not in reply["text"]
        and "example.com" not in reply["text"]
        and "x" * 40 not in reply["text"]
    )
    assert reply["text"] == "Send language codes, such as /lang en es. I can describe in: en es."
    assert len(reply["text"]) <= 4096


async def test_one_person_cant_make_the_bot_flood_a_group(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor, person_messages_per_minute=4):
        for _ in range(12):
            await telegram.push(
                telegram.message(GROUP, user_id=MEMBER, text="/help", entities=command("/help"))
            )
        await telegram.wait_for("sendMessage", count=5, chat_id=GROUP)
        await telegram.push(telegram.message(GROUP, user_id=ADMIN, text="/help", entities=command("/help")))
        await telegram.wait_for("sendMessage", count=6, chat_id=GROUP)  # someone else is answered
        await telegram.settle(0.5)
    texts = [m["text"] for m in telegram.sent("sendMessage", chat_id=GROUP)]
    notice = "You're asking faster than this chat can take: I'll answer you again in a minute."
    assert len(texts) == 6
    assert texts[:5].count(notice) == 1  # four answers and one notice, sent as they were ready
    assert texts[5].startswith("I describe photos")


async def test_detail_long_gives_each_picture_the_detailed_description(telegram, executor, tmp_path):
    describer = Wrapped(executor)
    async with running_bot(telegram, tmp_path / "state", describer):
        await telegram.push(telegram.message(5, text="/detail long", entities=command("/detail long")))
        [done] = await telegram.wait_for("sendMessage", chat_id=5)
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        [_, description] = await telegram.wait_for("sendMessage", count=2, chat_id=5)
        await telegram.push(telegram.message(5, language="es", text="/detalle", entities=command("/detalle")))
        [*_, state] = await telegram.wait_for("sendMessage", count=3, chat_id=5)
    assert done["text"] == "Descriptions here will be detailed: more about each picture."
    assert [s["task"] for s in describer.submitted] == [Describe(True, ("es",))]
    assert "A red square" in description["text"]
    assert [b["callback_data"] for b in description["reply_markup"]["inline_keyboard"][0]] == [
        "read",
        "delete",
    ]
    assert state["text"] == "Usa /detalle corto o /detalle largo. Ahora: largo."


async def test_in_groups_only_admins_set_the_detail(telegram, bot):
    telegram.members[(GROUP, ADMIN)] = "administrator"
    for count, user in enumerate((MEMBER, ADMIN), start=1):
        await telegram.push(
            telegram.message(GROUP, user_id=user, text="/detail long", entities=command("/detail"))
        )
        await telegram.wait_for("sendMessage", count=count, chat_id=GROUP)
    refused, done = telegram.sent("sendMessage", chat_id=GROUP)
    assert refused["text"] == "Only this group's admins can change that."
    assert done["text"].startswith("Descriptions here will be detailed")
