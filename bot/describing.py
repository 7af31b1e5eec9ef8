"""The way of one picture: pick the file, check the cache, download, queue, reply.

Pictures are downloaded into memory and handed to the describer; their bytes never touch
the disk. While the picture waits, the chat shows "typing…"; if it waits longer than
``STATUS_AFTER_S``, a short status reply says where it is in the queue, and that reply is
later edited into the description, so the chat gets one message, not two. The reply's id is
remembered with the picture's file id, so that a reply to the description can ask about it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import InlineKeyboardMarkup, Message, PhotoSize
from telegram.constants import ChatAction, FileSizeLimit
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from captioning import Busy, Description, InvalidImage, RequestTimeout, TooManyQueued

from . import replies
from .services import services
from .store import PictureRef

__all__ = [
    "STATUS_AFTER_S",
    "TooBigForTelegram",
    "choose_photo_size",
    "describe_message",
    "describe_one",
    "download",
    "keep_typing",
    "picture_file",
    "problem",
    "submit",
]

log = logging.getLogger(__name__)

# Telegram shows "typing…" for 5 seconds per chat action; refresh a little sooner.
TYPING_REFRESH_S = 4.0
# An answer quicker than this needs no "typing…": the reply itself arrives first. Every
# chat action counts against Telegram's ~30 requests/s, so the fast path skips it.
TYPING_AFTER_S = 0.3
# A picture that waits longer than this gets a "queued, position N" reply.
STATUS_AFTER_S = 3.0
# Silent (group) descriptions that meet a full queue are tried again after these pauses.
BUSY_RETRY_DELAYS_S = (5.0, 20.0, 60.0)


async def describe_message(
    target: Message,
    context: ContextTypes.DEFAULT_TYPE,
    *,
    loud: bool,
    asker_lang: str | None = None,
    asker_id: int | None = None,
) -> Description | None:
    """Describe the picture in ``target`` and reply to it; the description, if there is one.

    ``loud`` decides whether problems are explained (private chats, /describe) or ignored
    (automatic descriptions in groups, which must not add noise).
    """
    svc = services(context)
    user = target.from_user
    lang = asker_lang or replies.user_language(user.language_code if user else None)
    asker = asker_id if asker_id is not None else (user.id if user else 0)
    chat_lang = svc.store.chat_settings(target.chat_id).lang
    markup = replies.buttons(asker, chat_lang)
    reply = Reply(target)
    typing = asyncio.create_task(keep_typing(context, target))
    try:
        description = await describe_one(target, context, patient=not loud, status=(reply, lang))
        sent = await reply.send(replies.describe_reply(description, chat_lang), markup)
        picture = picture_file(target, svc.describer.input_size)
        svc.store.remember_pictures(sent.chat_id, sent.message_id, [picture])
        return description
    except (InvalidImage, TooBigForTelegram, Busy, RequestTimeout) as exc:
        if loud:
            await reply.send(problem(exc, lang))
    except TelegramError:
        raise  # replying itself failed (blocked, network): the error handler logs it
    except Exception:
        if loud:  # the engine failed: say so, then let the error handler log it
            with contextlib.suppress(TelegramError):
                await reply.send(replies.message("failed", lang))
        raise
    finally:
        typing.cancel()
    return None


async def describe_one(
    target: Message,
    context: ContextTypes.DEFAULT_TYPE,
    *,
    patient: bool,
    detailed: bool = False,
    status: tuple[Reply, str] | None = None,
) -> Description:
    """The description of the picture in ``target``, from the cache or the describer.

    With ``status`` (a reply and its language), a long wait gets a "queued" reply first.
    Raises InvalidImage, Busy, RequestTimeout, or TooBigForTelegram for its own problems.
    """
    svc = services(context)
    picture = picture_file(target, svc.describer.input_size)
    cache_key = picture.unique_id + ("#detailed" if detailed else "")
    cached = svc.store.cached_description(cache_key)
    if cached is not None:
        return cached
    data = await download(context, picture)
    user = target.from_user
    owner = user.id if user else target.chat_id
    keys = {"detailed": True} if detailed else {}
    ticket = await submit(svc.describer, data, target.chat_id, owner, patient=patient, **keys)
    description = await (_wait_with_status(ticket, *status) if status else ticket.result())
    svc.store.cache_description(cache_key, description)
    return description


class Reply:
    """The answer under a picture: a new reply, or the status reply edited into the answer."""

    def __init__(self, target: Message) -> None:
        self.target = target
        self.status: Message | None = None

    async def send(self, text: str, markup: InlineKeyboardMarkup | None = None) -> Message:
        """Send (or edit in) ``text``; returns the message that holds it."""
        if self.status is not None:
            try:
                edited = await self.status.edit_text(text, reply_markup=markup)
                return edited if isinstance(edited, Message) else self.status
            except BadRequest:  # the status message is gone: reply afresh
                pass
        return await self.target.reply_text(text, do_quote=True, reply_markup=markup)


def choose_photo_size(sizes: tuple[PhotoSize, ...], min_side: int) -> PhotoSize:
    """The smallest size whose short side is at least ``min_side``, else the largest.

    Chosen by the sizes given, not by their order: Telegram's order is not a promise.
    """
    big_enough = [s for s in sizes if min(s.width, s.height) >= min_side]
    if big_enough:
        return min(big_enough, key=lambda s: s.width * s.height)
    return max(sizes, key=lambda s: s.width * s.height)


async def submit(describer, data: bytes, lane: int, owner: int, *, patient: bool, **keys: object):
    """Hand the picture to the describer. When it is full, a person who asked hears "busy"
    at once; an automatic description in a group is tried again a little later instead,
    since nobody there would know to send the photo again."""
    for delay in (*BUSY_RETRY_DELAYS_S, None):
        try:
            return describer.submit(data, lane=lane, owner=owner, **keys)
        except Busy:
            if not patient or delay is None:
                raise
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


async def _wait_with_status(ticket, reply: Reply, lang: str) -> Description:
    """The description; past STATUS_AFTER_S, a status reply goes out first."""
    waiting = asyncio.ensure_future(ticket.result())
    done, _ = await asyncio.wait({waiting}, timeout=STATUS_AFTER_S)
    if not done:
        with contextlib.suppress(TelegramError):
            text = replies.message("queued", lang, position=max(ticket.position(), 1))
            reply.status = await reply.target.reply_text(text, do_quote=True)
    return await waiting


class TooBigForTelegram(Exception):
    """Telegram won't let a bot download this file (over 20 MB)."""

    def __init__(self, size_mb: int = 20) -> None:
        super().__init__(size_mb)
        self.size_mb = size_mb


# What to ask of the person when the queue is full, by what they were doing.
_TRY_AGAIN = {"describe": "busy", "again": "busy_again", "answer": "busy_question"}


def problem(error: BaseException, lang: str, *, task: str = "describe") -> str:
    """What to tell the person when their picture failed: while being described
    (``describe``), described again from the button (``again``), or asked about (``answer``)."""
    asking = task == "answer"
    if isinstance(error, InvalidImage):
        return replies.invalid_image(error.reason, lang)
    if isinstance(error, TooBigForTelegram):
        return replies.message("too_large_to_download", lang, size_mb=error.size_mb)
    if isinstance(error, TooManyQueued):
        return replies.message("too_many_queued", lang)
    if isinstance(error, Busy):
        return replies.message(_TRY_AGAIN[task], lang)
    if isinstance(error, RequestTimeout):
        return replies.message("timeout_question" if asking else "timeout", lang)
    return replies.message("failed_question" if asking else "failed", lang)


def picture_file(message: Message, min_side: int) -> PictureRef:
    """The file to fetch for a photo (the size that suits the model) or a picture document."""
    if message.photo:
        best = choose_photo_size(message.photo, min_side)
        return PictureRef(best.file_id, best.file_unique_id, best.file_size)
    document = message.document
    return PictureRef(document.file_id, document.file_unique_id, document.file_size)


async def download(context: ContextTypes.DEFAULT_TYPE, picture: PictureRef) -> bytes:
    """The file's bytes, in memory only: pictures never touch the disk.

    Raises TooBigForTelegram for files over Telegram's 20 MB, without trying where the size
    is known.
    """
    if picture.size is not None and picture.size > FileSizeLimit.FILESIZE_DOWNLOAD:
        raise TooBigForTelegram(round(picture.size / 1_000_000))
    try:
        file = await context.bot.get_file(picture.file_id)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            raise TooBigForTelegram from exc
        raise
    return bytes(await file.download_as_bytearray())


async def keep_typing(context: ContextTypes.DEFAULT_TYPE, message: Message) -> None:
    """Show "typing…" in the chat (and topic) until cancelled."""
    thread_id = message.message_thread_id if message.is_topic_message else None
    await asyncio.sleep(TYPING_AFTER_S)
    while True:
        with contextlib.suppress(TelegramError):
            await context.bot.send_chat_action(
                message.chat_id, ChatAction.TYPING, message_thread_id=thread_id
            )
        await asyncio.sleep(TYPING_REFRESH_S)
