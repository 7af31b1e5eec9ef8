"""A task on a picture, one way through the bot: describing, reading, answering, and any task
added later, go the same way.

    obtain:   the cache -> a file refused before? -> the describer (room first, then the
              download) -> waiting (past a few seconds, a "queued" reply) -> the result, cached
    deliver:  the reply (the "queued" reply edited into it), each message remembered with who
              asked and which pictures it is about: for its buttons, and for questions
    run_task: both, with "typing…" meanwhile, and what a problem gets decided by the mode

:class:`Mode` says who asked, and so what a problem gets: an explanation (someone asked), or
silence (nobody did: a group must not hear about it). An automatic description in a group
that finds no room in the queue, or runs out of time, is tried again later through the
journal (:class:`~bot.updates.journal.Deferred`), so a group's blind member still gets it;
text read out after a description, unasked, is never tried again (the description would come
twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import io
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardMarkup, Message, User
from telegram.error import BadRequest, TelegramError

from captioning import Answer, Busy, InvalidImage, RequestTimeout, Stopped, Task, TooManyQueued, Translated

from ..context import BotContext, Ticket
from ..messages import CATALOG, message, user_language
from ..permissions import SHARED_IDS
from ..pictures import PictureGone, TooBigForTelegram, download
from ..store import PictureRef
from ..updates.journal import Deferred

__all__ = [
    "PROBLEMS",
    "Mode",
    "Outgoing",
    "Reply",
    "deferred",
    "deliver",
    "obtain",
    "owner_id",
    "problem",
    "quota_owner",
    "run_task",
    "submit",
    "unchanged",
]

log = logging.getLogger(__name__)

# A picture's own problems, which the person who asked is told about.
PROBLEMS = (InvalidImage, TooBigForTelegram, PictureGone, Busy, RequestTimeout)


class Mode(enum.Enum):
    """Who asked for a task, and so what its problems get."""

    ASKED = "asked"  # a person asked (a private chat, a command, a button): problems said, "busy" at once
    UNASKED = "unasked"  # nobody asked, in a group (auto): silence; no room or time -> tried again later
    FOLLOW_ON = "follow_on"  # nobody asked, after a description (autoread): silence, never tried again


@dataclass(frozen=True)
class Outgoing:
    """What a result becomes in the chat: messages (the markup under the last), and a file."""

    parts: Sequence[str]
    markup: InlineKeyboardMarkup | None = None
    document: tuple[bytes, str, str] | None = None  # (bytes, file name, caption), after the parts


Render = Callable[[Any], Outgoing | None]


async def run_task(
    context: BotContext,
    target: Message,
    picture: PictureRef,
    task: Task,
    *,
    mode: Mode,
    render: Render,
    asker: User | None = None,
    status: bool = False,
) -> Any:
    """Do ``task`` on the picture in ``target`` and reply to it with ``render(result)``; the
    result, or None when there is none (a problem, said or not by ``mode``)."""
    ui = user_language(asker or target.from_user)
    reply = Reply(target)
    async with context.services.presence.working(target):
        try:
            result = await obtain(
                context, target, picture, task, mode=mode, asker=asker, status=(reply, ui) if status else None
            )
        except PROBLEMS as exc:
            if mode is Mode.ASKED:
                await reply.send(problem(exc, ui))
            return None
        except (TelegramError, Deferred, Stopped):
            raise  # Telegram didn't take a reply, or the bot is stopping: the journal decides
        except Exception:
            if mode is Mode.ASKED:  # the engine failed: say so, then let the error handler log it
                with contextlib.suppress(TelegramError):
                    await reply.send(message("failed", ui))
            raise
        outgoing = render(result)
        if outgoing is not None:
            await deliver(context, reply, outgoing, owner=owner_id(target, asker), pictures=[picture])
    return result


async def obtain(
    context: BotContext,
    target: Message,
    picture: PictureRef,
    task: Task,
    *,
    mode: Mode,
    asker: User | None = None,
    status: tuple[Reply, str] | None = None,
) -> Any:
    """The task's result for the picture, from the cache or the describer.

    With ``status`` (a reply and its language), a long wait gets a "queued" reply first.
    Raises InvalidImage, Busy, RequestTimeout, TooBigForTelegram or PictureGone for its own
    problems; in :attr:`Mode.UNASKED`, :class:`Deferred` instead of Busy (at submit, or as the
    result) or RequestTimeout; Deferred whenever the bot is stopping.
    """
    store = context.services.store
    key = _cache_key(task)
    cached, bad = await store.known(picture.unique_id, key or "")
    hit = _from_cache(task, cached) if key else None
    if hit is not None:
        return hit
    if bad is not None:  # refused before: no second download to say so again
        raise InvalidImage("This file was refused before.", bad)
    ticket = submit(context, target, picture, task, asker=asker, mode=mode)
    try:
        result = await (_wait_with_status(ticket, *status, context) if status else ticket.result())
    except InvalidImage as exc:
        await store.remember_bad_file(picture.unique_id, exc.reason)
        raise
    except Stopped as exc:  # not begun: the next start does it
        raise Deferred("stopping") from exc
    except (Busy, RequestTimeout) as exc:
        # Busy here is a backend that took the picture but couldn't reach its models (a Ray
        # cluster gone): a group photo waits for it, as for a full queue at submit.
        if mode is Mode.UNASKED:
            raise deferred(context, exc) from exc
        raise
    if key:
        await store.cache_texts(picture.unique_id, key, _to_cache(result))
    return result


def submit(
    context: BotContext,
    target: Message,
    picture: PictureRef | None,
    task: Task,
    *,
    asker: User | None = None,
    mode: Mode = Mode.ASKED,
) -> Ticket:
    """Queue the task: room is checked before a byte is downloaded. When there is none, a
    person who asked hears "busy" at once (Busy); an automatic description in a group is
    tried again later instead (Deferred), since nobody there would know to send it again."""
    svc, bot = context.services, context.bot
    if svc.stopping.is_set() or svc.describer is None:  # not begun yet: the next start does it
        raise Deferred("stopping")
    fetch = (lambda: download(bot, picture)) if picture is not None else None
    try:
        return svc.describer.submit(
            fetch,
            task,
            lane=target.chat_id,
            owner=quota_owner(target, asker),
            size=picture.size if picture is not None else None,
        )
    except Stopped as exc:
        raise Deferred("stopping") from exc
    except Busy as exc:
        if mode is Mode.UNASKED:  # a full queue, or one person's flood in a group: their turn comes later
            raise deferred(context, exc) from exc
        raise


async def deliver(
    context: BotContext, reply: Reply, outgoing: Outgoing, *, owner: int, pictures: Sequence[PictureRef]
) -> list[Message]:
    """Send ``outgoing`` under the reply's target, and remember who and what each message is
    about (a message about no picture is not remembered)."""
    store = context.services.store
    sent: list[Message] = []
    for number, text in enumerate(outgoing.parts, start=1):
        last = number == len(outgoing.parts)
        message_ = await reply.send(text, outgoing.markup if last else None)
        reply.status = None  # only the first part takes the place of the "queued" reply
        sent.append(message_)
        if pictures:
            await store.remember_reply(message_.chat_id, message_.message_id, owner, pictures)
    if outgoing.document is not None:
        data, name, caption = outgoing.document
        sent.append(
            await reply.target.reply_document(io.BytesIO(data), filename=name, caption=caption, do_quote=True)
        )
    return sent


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


async def _wait_with_status(ticket: Ticket, reply: Reply, lang: str, context: BotContext) -> Any:
    """The result; past ``Timings.status_after_s``, a status reply goes out first."""
    waiting = asyncio.ensure_future(ticket.result())
    done, _ = await asyncio.wait({waiting}, timeout=context.services.timings.status_after_s)
    if not done:
        with contextlib.suppress(TelegramError):
            text = message("queued", lang, position=max(ticket.position(), 1))
            reply.status = await reply.target.reply_text(text, do_quote=True)
    return await waiting


def _cache_key(task: Task) -> str | None:
    """What a task's result is cached under, by picture: its kind (a question: not cached)."""
    return None if isinstance(task, Answer) else task.kind


def _from_cache(task: Task, cached: dict[str, str]) -> Any:
    """The result in the cache, if it is all there: every language a task with languages
    wants (and English), or the text itself (language "")."""
    languages = getattr(task, "languages", None)
    if languages is None:
        return cached.get("")
    if "en" in cached and all(lang in cached for lang in languages):
        return Translated(cached["en"], {lang: cached[lang] for lang in languages})
    return None


def _to_cache(result: Any) -> dict[str, str]:
    if isinstance(result, Translated):
        return {"en": result.english, **result.translations}
    return {"": result}


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
