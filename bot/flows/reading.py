"""Reading the text in a picture out to the person: signs, menus, screenshots, documents.

    "Read text" under a description, /read (/leer) as a reply to a picture, a private photo
    whose caption is just "read" (or "leer"), or on its own: a description that says the
    picture is mostly text -> Read() through the executor -> the text, verbatim

The text keeps its lines (runs of spaces collapsed). Up to three messages of about 3,500
characters each; anything longer gets its first part and the whole text as a .txt file, which
a screen reader can page through. When the text is in English and the chat reads other
languages too, a "Translate" button under it gives the translations.
"""

from __future__ import annotations

import asyncio
import logging
import re

from telegram import Message, User
from telegram.error import TelegramError

from captioning import CaptioningError, Read, Translated
from captioning.questions import question_language

from .. import replies
from ..chats import translations
from ..context import BotContext
from ..messages import message, user_language
from ..pictures import picture_for_reading
from ..store import StoreUnavailable
from ..updates.journal import Deferred
from .delivery import Delivery
from .tasks import Mode, Outgoing, obtain, owner_id, run_task

__all__ = [
    "MAX_MESSAGES",
    "TEXT_WORDS",
    "mostly_text",
    "read_album",
    "read_if_mostly_text",
    "read_message",
    "split_text",
    "text_reply",
    "wants_reading",
]

log = logging.getLogger(__name__)

# What a caption says when the picture is mostly text: then the text is read without asking.
# Only words that mean text: "table", "card", "screen", "paper", "bill" or "package" say
# nothing about text ("a cat on a table"), and a group must not hear about them.
TEXT_WORDS = frozenset(
    """
    screenshot screenshots document documents page pages menu menus sign signs signboard
    receipt letter poster posters label labels whiteboard blackboard chalkboard text texts
    note notes newspaper magazine ticket flyer leaflet brochure timetable schedule handwriting
    writing words email website webpage invoice certificate prescription
    """.split()  # noqa: SIM905 (a word list reads best as words)
)
# A private photo whose caption is one of these is read instead of described.
READ_CAPTIONS = frozenset({"read", "leer", "/read", "/leer", "read it", "léelo", "leelo"})
CHUNK = 3500  # characters per message: Telegram's 4096, less a header
MAX_MESSAGES = 3


def mostly_text(caption: str) -> bool:
    """True when an English caption says the picture is mostly text ("a screenshot of a phone",
    "a sign on a wall", "a menu on a table")."""
    return any(word in TEXT_WORDS for word in re.findall(r"[a-z]+", caption.lower()))


def wants_reading(caption: str | None) -> bool:
    return " ".join((caption or "").lower().split()).strip(".!") in READ_CAPTIONS


def split_text(text: str, size: int = CHUNK) -> list[str]:
    """The text in parts of at most ``size`` characters, cut at line breaks (at spaces, or
    anywhere, only where one line is longer than that)."""
    parts: list[str] = []
    current = ""
    for line in text.split("\n"):
        while len(line) > size:
            cut = line.rfind(" ", 0, size)
            cut = cut if cut > size // 2 else size
            pieces = [line[:cut], line[cut:].lstrip()]
            if current:
                parts.append(current)
                current = ""
            parts.append(pieces[0])
            line = pieces[1]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > size:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts


async def read_if_mostly_text(
    target: Message, context: BotContext, description: Translated | None, *, asker: User | None = None
) -> None:
    """After a description: a picture that is mostly text gets its text read out at once,
    unless the chat turned that off (/autoread off).

    Nobody asked for it: so it is quiet (no "No text found", no problem explained, no waiting
    for room). A reply Telegram didn't take, or a bot stopping, leaves the update to be tried
    again, which sends only what is missing: the description is not sent twice, and the text
    goes on from its first part not sent. Its "Read text" button is still there.
    """
    if not await _reads_by_itself(context, target, description):
        return
    try:
        await read_message(target, context, mode=Mode.FOLLOW_ON, asker=asker)
    except CaptioningError as exc:  # the reading model failed: the description stands
        log.warning("message %s: the automatic read failed: %r", target.message_id, exc)


async def read_album(
    members: list[Message], descriptions: list[Translated | None], context: BotContext, *, key: str
) -> None:
    """After an album's answer: the text of its photos that are mostly text, in one message,
    numbered as in the answer (past one message's room, its start and the whole as a file)."""
    wanted = [
        (n, m)
        for n, (m, d) in enumerate(zip(members, descriptions, strict=True), start=1)
        if await _reads_by_itself(context, m, d)
    ]
    if not wanted:
        return
    size = context.services.capabilities.input_size("read")
    reads = [obtain(context, m, picture_for_reading(m, size), Read(), mode=Mode.FOLLOW_ON) for _, m in wanted]
    texts = await asyncio.gather(*reads, return_exceptions=True)
    for text in texts:
        if isinstance(text, (TelegramError, Deferred, StoreUnavailable)):
            raise text  # the album is kept, and tried again
    found = [(n, t) for (n, _), t in zip(wanted, texts, strict=True) if isinstance(t, str) and t.strip()]
    if not found:
        return
    leader = members[0]
    languages = await context.languages(leader.chat, leader.from_user)
    voice = replies.voice(languages, user_language(leader.from_user))
    lines = [message("texts_found", voice)]
    lines += [f"{n}. " + replies.inert(text).replace("\n", "\n   ") for n, text in found]
    whole = "\n".join(lines)
    parts = split_text(whole)
    document = (
        None
        if len(parts) == 1
        else (whole.encode("utf-8"), "texts.txt", message("text_file", voice, count=len(whole)))
    )
    outgoing = Outgoing(
        parts[:1],
        context.services.actions.buttons("album", languages, context.services.capabilities),
        document,
    )
    pictures = [picture_for_reading(m, size) for _, m in wanted]
    delivery = await Delivery.start(context, leader, "read", key=key)
    await delivery.send(outgoing, owner=owner_id(leader), pictures=pictures)


async def _reads_by_itself(context: BotContext, target: Message, description: Translated | None) -> bool:
    """Whether a picture so described is read out without anyone asking: the chat's autoread is
    on, the models can read, and the description says the picture is mostly text."""
    if description is None or not context.services.capabilities.can("read"):
        return False
    return mostly_text(description.english) and (await context.chat_settings(target.chat_id)).autoread


async def read_message(
    target: Message, context: BotContext, *, mode: Mode, asker: User | None = None
) -> str | None:
    """Read the picture in ``target`` and reply with its text (or that there is none; not
    when nobody asked: :attr:`Mode.FOLLOW_ON`)."""
    svc = context.services
    person = asker or target.from_user
    ui = user_language(person)
    languages = await context.languages(target.chat, person)
    picture = picture_for_reading(target, svc.capabilities.input_size("read"))

    def render(text: str) -> Outgoing | None:
        if mode is Mode.FOLLOW_ON and not text.strip():
            return None
        return text_reply(text, languages, ui, context)

    text: str | None = await run_task(context, target, picture, Read(), mode=mode, render=render, asker=asker)
    return text


def text_reply(text: str, languages: tuple[str, ...], ui: str, context: BotContext) -> Outgoing:
    """The text, verbatim, in up to MAX_MESSAGES replies, or its first part and a .txt file."""
    svc = context.services
    voice = replies.voice(languages, ui)
    if not text.strip():
        return Outgoing(
            [message("no_text", voice)], svc.actions.buttons("no_text", languages, svc.capabilities)
        )
    parts = [replies.inert(part) for part in split_text(text)]
    others = translations(languages)
    translatable = bool(others) and question_language(text, hint="en", languages=("en", *others)) == "en"
    leave_out = () if translatable else ("translate",)
    markup = svc.actions.buttons("text", languages, svc.capabilities, leave_out=leave_out)
    header = message("text_found", voice)
    if len(parts) <= MAX_MESSAGES:
        return Outgoing([f"{header}\n{parts[0]}", *parts[1:]], markup)
    caption = message("text_file", voice, count=len(text))
    return Outgoing([f"{header}\n{parts[0]}"], markup, document=(text.encode("utf-8"), "text.txt", caption))
