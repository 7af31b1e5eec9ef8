"""The buttons under the bot's replies, one small handler per action.

Callback data comes from the client and can be forged, so it only names an action
(``again``, ``delete``, ``lang:fr``), and each handler is routed by a strict pattern
(``CallbackQueryHandler(pattern=...)``). Who may press is looked up on the server: the
person the reply answers (the store remembers it), or an admin. Data that matches no action
is answered ("this button no longer does anything"), so no spinner is left turning.
"""

from __future__ import annotations

import asyncio
import logging

from telegram import Message, Update
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import CallbackQueryHandler

from captioning import CaptioningError
from captioning.languages import native_name

from . import replies
from .chats import chat_languages
from .context import BotContext
from .describing import describe_one, problem, unchanged
from .messages import message, user_language
from .permissions import is_private
from .pictures import PictureGone, TooBigForTelegram

__all__ = ["PATTERNS", "Action", "on_again", "on_delete", "on_lang", "on_unknown", "pressable"]

log = logging.getLogger(__name__)

# Buttons sent before the data named only the action carried ":<id>"; it is ignored.
PATTERNS = {
    "again": r"^again(:\d{1,20})?$",
    "delete": r"^delete(:\d{1,20})?$",
    "lang": r"^lang:[a-z]{2}$",
    "read": r"^read$",
    "translate": r"^translate$",
}


class Action(CallbackQueryHandler):
    """A press routed by its data, strictly. python-telegram-bot lets a press without data
    (or with empty data) through any pattern; here it matches no action."""

    def check_update(self, update: object) -> bool | object | None:
        query = update.callback_query if isinstance(update, Update) else None
        if query is None or not isinstance(query.data, str) or not query.data:
            return None
        return super().check_update(update)


async def on_again(update: Update, context: BotContext) -> None:
    """ "Describe again": beam search and room for more words, edited into the reply."""
    query, ui = update.callback_query, user_language(update.effective_user)
    reply = await pressable(update, context)
    if reply is None:
        return
    photo = reply.reply_to_message
    if photo is None or not (photo.photo or photo.document):
        await query.answer(message("picture_gone", ui), show_alert=True)
        return
    svc = context.services
    languages = await chat_languages(svc, reply.chat, update.effective_user)
    describing = asyncio.ensure_future(
        describe_one(
            photo, context, patient=False, languages=languages, asker=update.effective_user, detailed=True
        )
    )
    # Telegram shows a spinner until the press is answered: answer at once if the description
    # is quick (or refused at once, as when the queue is full: said in an alert), else with a
    # "describing it again" toast, and the description is edited in when ready.
    await asyncio.wait({describing}, timeout=svc.timings.quick_answer_s)
    if not describing.done():
        await query.answer(message("describing_again", ui))
    elif describing.exception() is not None:
        error = describing.exception()
        if not isinstance(error, (CaptioningError, TooBigForTelegram, PictureGone)):
            raise error
        await query.answer(problem(error, ui, task="again"), show_alert=True)
        return
    else:
        await query.answer()
    try:
        result = await describing
    except (CaptioningError, TooBigForTelegram, PictureGone) as exc:
        # The old description stays. A private chat hears why; a group isn't told.
        log.info("update %s: describing again failed: %s", update.update_id, type(exc).__name__)
        if is_private(update):
            await reply.reply_text(problem(exc, ui), do_quote=True)
        return
    try:
        await reply.edit_text(
            replies.describe_reply(result, languages, ui),
            reply_markup=replies.buttons(languages, read=svc.describer.can_read),
        )
    except BadRequest as exc:
        if not unchanged(exc):
            raise  # Telegram refuses an edit that changes nothing: the reply already says it


async def on_delete(update: Update, context: BotContext) -> None:
    """ "Delete": the bot's reply goes, and so does what the bot remembered about it."""
    query = update.callback_query
    reply = await pressable(update, context)
    if reply is None:
        return
    try:
        await reply.delete()
    except (BadRequest, Forbidden) as exc:  # too old to delete (48 h), or already gone
        log.info("update %s: couldn't delete a reply: %s", update.update_id, exc)
        await query.answer(message("button_unknown", user_language(update.effective_user)), show_alert=True)
        return
    await context.services.store.forget_reply(reply.chat_id, reply.message_id)
    await query.answer()


async def on_lang(update: Update, context: BotContext) -> None:
    """A language button under /lang: add it to the chat's languages, or take it away."""
    query, ui = update.callback_query, user_language(update.effective_user)
    code = (query.data or "").partition(":")[2]
    reply = query.message
    svc = context.services
    available = svc.describer.languages
    if not isinstance(reply, Message) or code not in available:
        await query.answer(message("button_unknown", ui))
        return
    if not await svc.members.may_change_settings(update):
        await query.answer(message("admins_only", ui), show_alert=True)
        return
    current = list(await chat_languages(svc, reply.chat, update.effective_user))
    if code in current:
        if len(current) > 1:  # a chat keeps at least one language
            current.remove(code)
    else:
        current.append(code)
    await svc.store.set_languages(reply.chat_id, current)
    names = ", ".join(native_name(c) for c in current)
    await query.answer(message("lang_set", ui, languages=names))
    try:
        await reply.edit_reply_markup(reply_markup=replies.lang_keyboard(available, tuple(current)))
    except BadRequest as exc:
        if not unchanged(exc):
            raise


async def on_unknown(update: Update, context: BotContext) -> None:
    """Any other data: a forged press, or a button from a version that had other actions."""
    await update.callback_query.answer(message("button_unknown", user_language(update.effective_user)))


async def pressable(update: Update, context: BotContext) -> Message | None:
    """The reply whose button was pressed, if the presser may press it; else answered, None."""
    query = update.callback_query
    reply = query.message
    if not isinstance(reply, Message):  # too old for Telegram to show the bot
        await query.answer(message("button_unknown", user_language(update.effective_user)))
        return None
    owner = await context.services.store.reply_owner(reply.chat_id, reply.message_id)
    try:
        allowed = await context.services.members.may_press(update, owner)
    except TelegramError as exc:
        log.info("update %s: couldn't ask Telegram who may press: %s", update.update_id, exc)
        allowed = False
    if not allowed:
        await query.answer(
            message("buttons_not_yours", user_language(update.effective_user)), show_alert=True
        )
        return None
    return reply
