"""The way of one picture: pick the file, check the caches, queue (room first, then the
download), wait, reply.

While the picture waits, the chat shows "typing…" (:mod:`bot.presence`); if it waits longer
than ``Timings.status_after_s``, a short status reply says where it is in the queue, and that
reply is later edited into the description, so the chat gets one message, not two. The
reply is remembered with who asked and which picture it is about: for its buttons, and so
that a reply to the description can ask about the picture.

``loud`` decides what a problem gets: an explanation (private chats, /describe), or silence
(automatic descriptions in groups, which must not add noise). A silent description that
finds no room in the queue, or runs out of time, is tried again later through the journal
(:class:`~bot.journal.Deferred`), so a group's blind member still gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable

from telegram import InlineKeyboardMarkup, Message, User
from telegram.error import BadRequest, TelegramError

from captioning import Busy, Describe, InvalidImage, RequestTimeout, Stopped, TooManyQueued, Translated

from . import replies
from .chats import chat_languages, translations
from .context import BotContext
from .journal import Deferred
from .messages import CATALOG, message, user_language
from .permissions import SHARED_IDS
from .pictures import PictureGone, TooBigForTelegram, download, picture_file
from .store import PictureRef

__all__ = [
    "Reply",
    "deferred",
    "describe_message",
    "describe_one",
    "problem",
    "quota_owner",
    "submit",
    "unchanged",
]

log = logging.getLogger(__name__)


def quota_owner(target: Message, asker: User | None = None) -> Hashable:
    """Whose quota a picture uses: the person who asked for it (/describe, a button), else its
    sender. Telegram's shared stand-in senders (anonymous admins, channels, automatic
    forwards) count per chat, so one busy channel can't use up everyone's room."""
    user = asker or target.from_user
    if user is None:
        return ("chat", target.chat_id)
    if user.id in SHARED_IDS:
        return (user.id, target.chat_id)
    return user.id


def owner_id(target: Message, asker: User | None = None) -> int:
    """Who a reply answers, for its buttons: 0 (admins only) when nobody in particular."""
    user = asker or target.from_user
    return user.id if user is not None else 0


async def describe_message(
    target: Message, context: BotContext, *, loud: bool, asker: User | None = None
) -> Translated | None:
    """Describe the picture in ``target`` and reply to it; the description, if there is one."""
    svc = context.services
    person = asker or target.from_user
    ui = user_language(person)
    languages = await chat_languages(svc, target.chat, person)
    reply = Reply(target)
    async with svc.presence.working(target):
        try:
            result = await describe_one(
                target, context, patient=not loud, languages=languages, asker=asker, status=(reply, ui)
            )
            markup = replies.buttons(languages, read=svc.describer.can_read)
            sent = await reply.send(replies.describe_reply(result, languages, ui), markup)
            picture = picture_file(target, svc.describer.input_size)
            await svc.store.remember_reply(sent.chat_id, sent.message_id, owner_id(target, asker), [picture])
            return result
        except (InvalidImage, TooBigForTelegram, PictureGone, Busy, RequestTimeout) as exc:
            if loud:
                await reply.send(problem(exc, ui))
        except TelegramError:
            raise  # replying itself failed (blocked, network): the journal decides
        except (Deferred, Stopped):
            raise
        except Exception:
            if loud:  # the engine failed: say so, then let the error handler log it
                with contextlib.suppress(TelegramError):
                    await reply.send(message("failed", ui))
            raise
    return None


async def describe_one(
    target: Message,
    context: BotContext,
    *,
    patient: bool,
    languages: tuple[str, ...],
    asker: User | None = None,
    detailed: bool = False,
    status: tuple[Reply, str] | None = None,
) -> Translated:
    """The description of the picture in ``target``, from the cache or the describer.

    With ``status`` (a reply and its language), a long wait gets a "queued" reply first.
    Raises InvalidImage, Busy, RequestTimeout, TooBigForTelegram or PictureGone for its own
    problems; a ``patient`` one raises :class:`Deferred` instead of Busy (at submit, or as the
    result) or RequestTimeout.
    """
    svc = context.services
    picture = picture_file(target, svc.describer.input_size)
    task = Describe(detailed, translations(languages))
    cached = await svc.store.cached_texts(picture.unique_id, task.kind)
    if "en" in cached and all(lang in cached for lang in task.languages):
        return Translated(cached["en"], {lang: cached[lang] for lang in task.languages})
    bad = await svc.store.bad_file(picture.unique_id)
    if bad is not None:  # refused before: no second download to say so again
        raise InvalidImage("This file was refused before.", bad)
    ticket = submit(context, target, picture, task, asker=asker, patient=patient)
    try:
        result: Translated = await (
            _wait_with_status(ticket, *status, svc.timings.status_after_s) if status else ticket.result()
        )
    except InvalidImage as exc:
        await svc.store.remember_bad_file(picture.unique_id, exc.reason)
        raise
    except (Busy, RequestTimeout, Stopped) as exc:
        # Busy here is a backend that took the picture but couldn't reach its models (a Ray
        # cluster gone): a group photo waits for it, as for a full queue at submit.
        if patient or isinstance(exc, Stopped):
            raise deferred(context, exc) from exc
        raise
    await svc.store.cache_texts(picture.unique_id, task.kind, {"en": result.english, **result.translations})
    return result


def submit(
    context: BotContext,
    target: Message,
    picture: PictureRef,
    task: object,
    *,
    asker: User | None = None,
    patient: bool = False,
):
    """Queue the picture: room is checked before a byte is downloaded. When there is none, a
    person who asked hears "busy" at once (Busy); an automatic description in a group is
    tried again later instead (Deferred), since nobody there would know to send it again."""
    svc = context.services
    bot = context.bot
    if svc.stopping.is_set():  # not begun yet: the next start does it
        raise Deferred("stopping")
    try:
        return svc.describer.submit(
            lambda: download(bot, picture),
            task,
            lane=target.chat_id,
            owner=quota_owner(target, asker),
            size=picture.size,
        )
    except Stopped as exc:
        raise Deferred("stopping") from exc
    except Busy as exc:
        if patient:  # a full queue, or one person's flood in a group: their turn comes later
            raise deferred(context, exc) from exc
        raise


def deferred(context: BotContext, exc: BaseException) -> Deferred:
    """Tried again later (a group's picture that met a full queue or a slow model), within
    Timings.busy_give_up_s of its arrival."""
    return Deferred(type(exc).__name__, give_up_after_s=context.services.timings.busy_give_up_s)


def unchanged(exc: BadRequest) -> bool:
    """Whether Telegram refused an edit for changing nothing ("message is not modified")."""
    return "not modified" in str(exc).lower()


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
            except BadRequest as exc:
                if unchanged(exc):
                    return self.status
                # the status message is gone: reply afresh
        return await self.target.reply_text(text, do_quote=True, reply_markup=markup)


async def _wait_with_status(ticket, reply: Reply, lang: str, after_s: float) -> Translated:
    """The result; past ``after_s``, a status reply goes out first."""
    waiting = asyncio.ensure_future(ticket.result())
    done, _ = await asyncio.wait({waiting}, timeout=after_s)
    if not done:
        with contextlib.suppress(TelegramError):
            text = message("queued", lang, position=max(ticket.position(), 1))
            reply.status = await reply.target.reply_text(text, do_quote=True)
    return await waiting


# What to ask of the person when the queue is full, by what they were doing.
_TRY_AGAIN = {"describe": "busy", "again": "busy_again", "answer": "busy_question"}


def problem(error: BaseException, lang: str, *, task: str = "describe") -> str:
    """What to tell the person when their picture failed: while being described
    (``describe``), described again from the button (``again``), or asked about (``answer``)."""
    asking = task == "answer"
    if isinstance(error, InvalidImage):
        key = f"invalid.{error.reason}"
        return message(key if key in CATALOG["en"] else "invalid.not_a_picture", lang)
    if isinstance(error, TooBigForTelegram):
        return message("too_large_to_download", lang, size_mb=error.size_mb)
    if isinstance(error, PictureGone):
        return message("no_longer_available", lang)
    if isinstance(error, TooManyQueued):
        return message("too_many_queued", lang)
    if isinstance(error, Busy):
        return message(_TRY_AGAIN[task], lang)
    if isinstance(error, RequestTimeout):
        return message("timeout_question" if asking else "timeout", lang)
    return message("failed_question" if asking else "failed", lang)
