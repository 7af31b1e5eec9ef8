"""Describing a picture: a photo or a picture file as it arrives, ``/describe`` in reply to
one, and "More detail" under a description, each through :func:`~.tasks.run_task`.

While the picture waits, the chat shows "typing…" (:mod:`bot.presence`); if it waits longer
than ``Timings.status_after_s``, a short status reply says where it is in the queue, and that
reply is later edited into the description, so the chat gets one message, not two.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Message, Update, User
from telegram.error import BadRequest

from captioning import CaptioningError, Describe, Translated

from .. import replies
from ..chats import translations
from ..context import BotContext, message_of, query_of
from ..messages import message, user_language
from ..permissions import is_private
from ..pictures import PictureGone, TooBigForTelegram, picture_file
from .buttons import pressable
from .delivery import unchanged
from .reading import read_if_mostly_text
from .tasks import Mode, Outgoing, obtain, problem, run_task

__all__ = ["describe_command", "describe_message", "on_again"]

log = logging.getLogger(__name__)


async def describe_command(update: Update, context: BotContext) -> None:
    """/describe, sent as a reply to a photo or picture file: describe it, in any mode."""
    target = message_of(update).reply_to_message
    if target is None or not (target.photo or target.document):
        await message_of(update).reply_text(message("describe_usage", user_language(update.effective_user)))
        return
    # The person who asked owns the reply's buttons, and the request counts against their quota.
    asker = update.effective_user
    description = await describe_message(target, context, mode=Mode.ASKED, asker=asker)
    await read_if_mostly_text(target, context, description, asker=asker)


async def describe_message(
    target: Message, context: BotContext, *, mode: Mode, asker: User | None = None
) -> Translated | None:
    """Describe the picture in ``target`` and reply to it; the description, if there is one."""
    svc = context.services
    ui = user_language(asker or target.from_user)
    languages = await context.languages(target.chat, asker or target.from_user)
    detailed = (await context.chat_settings(target.chat_id)).detailed and svc.capabilities.can(
        "describe_detailed"
    )
    task = Describe(detailed, translations(languages))
    # The photo size for the model that writes it: Florence-2's long description looks at 768 px.
    picture = picture_file(target, svc.capabilities.input_size(task.kind))
    # "More detail" under a description that has it all already would only say it again.
    markup = svc.actions.buttons("description", languages, svc.capabilities, leave_out=("again",) * detailed)

    def render(result: Translated) -> Outgoing:
        return Outgoing([replies.describe_reply(result, languages, ui)], markup)

    described: Translated | None = await run_task(
        context, target, picture, task, mode=mode, render=render, asker=asker, status=True
    )
    return described


async def on_again(update: Update, context: BotContext) -> None:
    """ "More detail": beam search and room for more words, edited into the reply."""
    query, ui = query_of(update), user_language(update.effective_user)
    reply = await pressable(update, context)
    if reply is None:
        return
    photo = reply.reply_to_message
    if photo is None or not (photo.photo or photo.document):
        await query.answer(message("picture_gone", ui), show_alert=True)
        return
    svc, asker = context.services, update.effective_user
    languages = await context.languages(reply.chat, asker)
    picture = picture_file(photo, svc.capabilities.input_size("describe_detailed"))
    task = Describe(detailed=True, languages=translations(languages))
    describing = asyncio.ensure_future(obtain(context, photo, picture, task, mode=Mode.ASKED, asker=asker))
    if not await _answered(update, describing, svc.timings.quick_answer_s):
        return
    try:
        result = await describing
    except (CaptioningError, TooBigForTelegram, PictureGone) as exc:
        # The old description stays. A private chat hears why; a group isn't told.
        log.info("update %s: describing again failed: %s", update.update_id, type(exc).__name__)
        if is_private(update):
            await reply.reply_text(problem(exc, ui), do_quote=True)
        return
    markup = svc.actions.buttons("description", languages, svc.capabilities)
    try:
        await reply.edit_text(replies.describe_reply(result, languages, ui), reply_markup=markup)
    except BadRequest as exc:
        if not unchanged(exc):
            raise  # Telegram refuses an edit that changes nothing: the reply already says it


async def _answered(update: Update, working: asyncio.Future[object], quick_s: float) -> bool:
    """Telegram shows a spinner until a press is answered: answer at once if the work is quick
    (or refused at once, as when the queue is full: said in an alert, and False), else with a
    "working on it" toast, and the result is edited in when ready."""
    query, ui = query_of(update), user_language(update.effective_user)
    await asyncio.wait({working}, timeout=quick_s)
    if not working.done():
        await query.answer(message("describing_again", ui))
        return True
    error = working.exception()
    if error is None:
        await query.answer()
        return True
    if not isinstance(error, (CaptioningError, TooBigForTelegram, PictureGone)):
        raise error
    await query.answer(problem(error, ui, task="again"), show_alert=True)
    return False
