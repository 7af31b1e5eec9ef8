"""A task on a picture, one way through the bot: describing, reading, answering, and any task
added later, go the same way.

    obtain:   the cache -> a file refused before? -> the describer (room first, then the
              download) -> waiting (past a few seconds, a "queued" reply) -> the result, cached
    deliver:  the reply (the "queued" reply edited into it), each message remembered with who
              asked and which pictures it is about: for its buttons, and for questions; each
              part written down as it goes (:mod:`.delivery`), so nothing is sent twice
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
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any

from telegram import Message, ReplyParameters, User
from telegram.error import TelegramError

from captioning import Answer, Busy, InvalidImage, RequestTimeout, Stopped, Task, TooManyQueued, Translated

from ..context import BotContext, Ticket
from ..messages import CATALOG, message, user_language
from ..permissions import SHARED_IDS
from ..pictures import PictureGone, TooBigForTelegram, download
from ..store import PictureRef
from ..updates.journal import Deferred
from .delivery import Delivery, Outgoing, default_key

__all__ = [
    "PROBLEMS",
    "Mode",
    "Outgoing",
    "deferred",
    "obtain",
    "owner_id",
    "problem",
    "quota_owner",
    "run_task",
    "submit",
]

log = logging.getLogger(__name__)

# A picture's own problems, which the person who asked is told about.
PROBLEMS = (InvalidImage, TooBigForTelegram, PictureGone, Busy, RequestTimeout)


class Mode(enum.Enum):
    """Who asked for a task, and so what its problems get."""

    ASKED = "asked"  # a person asked (a private chat, a command, a button): problems said, "busy" at once
    UNASKED = "unasked"  # nobody asked, in a group (auto): silence; no room or time -> tried again later
    FOLLOW_ON = "follow_on"  # nobody asked, after a description (autoread): silence, never tried again


# A task kind -> what problem() says it was doing.
_DOING = {"read": "read", "answer": "answer"}

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
    key: str | None = None,
) -> Any:
    """Do ``task`` on the picture in ``target`` and reply to it with ``render(result)``; the
    result, or None when there is none (a problem, said or not by ``mode``). The answer is
    this update's ``task.kind`` (or ``key``, see :mod:`.delivery`): tried again, it sends only
    what is missing. Asked again (an ``asker``: a command, a button) within a few minutes of
    the same answer about the same picture, it points to that answer instead."""
    ui = user_language(asker or target.from_user)
    async with _one_at_a_time(context, (target.chat_id, picture.unique_id, task.kind) if asker else None):
        answer_key = key or default_key(context, target, task.kind)
        if asker is not None and await _pointed_to_earlier(
            context, target, picture, key=answer_key, kind=task.kind, ui=ui
        ):
            return None
        return await _run_task(
            context,
            target,
            picture,
            task,
            mode=mode,
            render=render,
            asker=asker,
            status=status,
            key=key,
            ui=ui,
        )


async def _run_task(
    context: BotContext,
    target: Message,
    picture: PictureRef,
    task: Task,
    *,
    mode: Mode,
    render: Render,
    asker: User | None,
    status: bool,
    key: str | None,
    ui: str,
) -> Any:
    delivery = await Delivery.start(context, target, task.kind, key=key)
    async with context.services.presence.working(target):
        try:
            waiting = (delivery, ui) if status else None
            result = await obtain(context, target, picture, task, mode=mode, asker=asker, status=waiting)
        except PROBLEMS as exc:
            said = problem(exc, ui, task=_DOING.get(task.kind, "describe"))
            await (delivery.say(said) if mode is Mode.ASKED else delivery.withdraw())
            return None
        except (TelegramError, Deferred, Stopped):
            raise  # Telegram didn't take a reply, or the bot is stopping: the journal decides
        except Exception:
            with contextlib.suppress(TelegramError):  # the engine failed: say so (or take the queued
                # reply back), then let the error handler log it
                said = problem(RuntimeError(), ui, task=_DOING.get(task.kind, "describe"))
                await (delivery.say(said) if mode is Mode.ASKED else delivery.withdraw())
            raise
        outgoing = render(result)
        if outgoing is None:
            await delivery.withdraw()
        else:
            await delivery.send(outgoing, owner=owner_id(target, asker), pictures=[picture])
    return result


async def obtain(
    context: BotContext,
    target: Message,
    picture: PictureRef,
    task: Task,
    *,
    mode: Mode,
    asker: User | None = None,
    status: tuple[Delivery, str] | None = None,
) -> Any:
    """The task's result for the picture, from the cache or the describer.

    With ``status`` (an answer and its language), a long wait gets a "queued" reply first.
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
        if isinstance(exc, RequestTimeout) and key:
            _keep_when_done(context, ticket, picture, key)
        if mode is Mode.UNASKED:
            raise deferred(context, exc) from exc
        raise
    if key:
        await store.cache_texts(picture.unique_id, key, _to_cache(result))
    return result


@contextlib.asynccontextmanager
async def _one_at_a_time(context: BotContext, key: Hashable | None) -> AsyncIterator[None]:
    """The same ask about the same picture in the same chat, one at a time: five /read sent
    together get one reading and four pointers to it, not five readings."""
    if key is None:
        yield
        return
    locks = context.services.asking
    lock = locks.setdefault(key, asyncio.Lock())
    try:
        async with lock:
            yield
    finally:
        if not lock.locked() and locks.get(key) is lock:
            del locks[key]


async def _pointed_to_earlier(
    context: BotContext, target: Message, picture: PictureRef, key: str, ui: str, kind: str
) -> bool:
    """A short reply to the same answer about the same picture, if another ask had it sent
    within ``Timings.repeat_window_s``: the chat doesn't get it twice."""
    svc = context.services
    since = time.time() - svc.timings.repeat_window_s
    earlier = await svc.store.recent_answer(target.chat_id, picture.unique_id, kind, since, other_than=key)
    key = f"see_above.{kind}"
    if earlier is None or key not in CATALOG["en"]:
        return False
    await context.bot.send_message(
        target.chat_id,
        message(key, ui),
        reply_parameters=ReplyParameters(earlier, allow_sending_without_reply=True),
        message_thread_id=target.message_thread_id if target.is_topic_message else None,
    )
    return True


def _keep_when_done(context: BotContext, ticket: Ticket, picture: PictureRef, key: str) -> None:
    """A task that ran past REQUEST_TIMEOUT_S on the models still finishes: its result goes to
    the cache when it comes, so the next try (a group photo's, or a person asking again) is
    answered from there, instead of doing all the work again and running out of time again."""
    svc = context.services

    async def keep() -> None:
        try:
            result = await asyncio.wait_for(ticket.late(), svc.timings.busy_give_up_s)
        except (asyncio.CancelledError, Exception):  # dropped, failed, or too late: nothing to keep
            return
        await svc.store.cache_texts(picture.unique_id, key, _to_cache(result))

    task = asyncio.get_running_loop().create_task(keep())
    svc.background.add(task)
    task.add_done_callback(svc.background.discard)


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


async def _wait_with_status(ticket: Ticket, delivery: Delivery, lang: str, context: BotContext) -> Any:
    """The result; past ``Timings.status_after_s``, a "queued" reply goes out first (once for
    the answer, however often it is tried)."""
    waiting = asyncio.ensure_future(ticket.result())
    done, _ = await asyncio.wait({waiting}, timeout=context.services.timings.status_after_s)
    if not done:
        with contextlib.suppress(TelegramError):
            await delivery.queued(message("queued", lang, position=max(ticket.position(), 1)))
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


# What to say when no room, no time, or the models failed, by what the person was doing: a
# description, one again from the button, an answer, or a text read out.
_SAID = {
    "describe": ("busy", "timeout", "failed"),
    "again": ("busy_again", "timeout", "failed"),
    "answer": ("busy_question", "timeout_question", "failed_question"),
    "read": ("busy_read", "timeout_read", "failed_read"),
}


def problem(error: BaseException, lang: str, *, task: str = "describe") -> str:
    """What to tell the person when their picture failed, while doing ``task``: ``describe``,
    ``again`` (described again from the button), ``answer``, or ``read``."""
    busy, timeout, failed = _SAID.get(task, _SAID["describe"])
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
        return message(busy, lang)
    if isinstance(error, RequestTimeout):
        return message(timeout, lang)
    return message(failed, lang)
