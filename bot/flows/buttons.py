"""The buttons under the bot's replies: who may press them, and the actions of no task
("Delete", a language under /lang, and data no action knows).

Callback data comes from the client and can be forged, so it only names an action
(``again``, ``delete``, ``lang:fr``), and each handler is routed by a strict pattern (see
:mod:`bot.actions`). Who may press is looked up on the server: the person the reply answers
(the store remembers it), or an admin. Data that matches no action is answered ("this button
no longer does anything"), so no spinner is left turning.
"""

from __future__ import annotations

import logging

from telegram import Message, Update
from telegram.error import BadRequest, Forbidden, TelegramError

from captioning.languages import native_name

from .. import replies
from ..context import BotContext, query_of
from ..messages import message, user_language

__all__ = ["on_delete", "on_lang", "on_unknown", "pressable"]

log = logging.getLogger(__name__)


async def on_delete(update: Update, context: BotContext) -> None:
    """ "Delete": the bot's answer goes, every message of it (a long text read out is several,
    and a file), and so does what the bot remembered about it."""
    query = query_of(update)
    reply = await pressable(update, context)
    if reply is None:
        return
    store = context.services.store
    messages = await store.answer_of(reply.chat_id, reply.message_id) or [(reply.chat_id, reply.message_id)]
    try:
        for chat_id, message_id in messages:
            await context.bot.delete_message(chat_id, message_id)
    except (BadRequest, Forbidden) as exc:  # too old to delete (48 h), or already gone
        log.info("update %s: couldn't delete a reply: %s", update.update_id, exc)
        await query.answer(message("button_unknown", user_language(update.effective_user)), show_alert=True)
        return
    await store.forget_answer(reply.chat_id, reply.message_id)
    await query.answer()


async def on_lang(update: Update, context: BotContext) -> None:
    """A language button under /lang: add it to the chat's languages, or take it away."""
    query, ui = query_of(update), user_language(update.effective_user)
    code = (query.data or "").partition(":")[2]
    reply = query.message
    svc = context.services
    available = svc.capabilities.languages
    if not isinstance(reply, Message) or code not in available or not _shows(reply, query.data or ""):
        await query.answer(message("button_unknown", ui))
        return
    if not await svc.members.may_change_settings(update):
        await query.answer(message("admins_only", ui), show_alert=True)
        return
    current = await context.toggle_language(reply.chat, update.effective_user, code)
    names = ", ".join(native_name(c) for c in current)
    await query.answer(message("lang_set", ui, languages=names))
    try:
        await reply.edit_reply_markup(reply_markup=replies.lang_keyboard(available, current))
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


def _shows(reply: Message, data: str) -> bool:
    """Whether ``reply`` carries a button with ``data``: the message comes from Telegram, the
    data from the client, so a language press counts only on the /lang menu itself."""
    markup = reply.reply_markup
    rows = markup.inline_keyboard if markup is not None else ()
    return any(button.callback_data == data for row in rows for button in row)


async def on_unknown(update: Update, context: BotContext) -> None:
    """Any other data: a forged press, or a button from a version that had other actions."""
    await query_of(update).answer(message("button_unknown", user_language(update.effective_user)))


async def pressable(update: Update, context: BotContext) -> Message | None:
    """The reply whose button was pressed, if the presser may press it; else answered, None."""
    query = query_of(update)
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
