"""One small async function per kind of update."""

from __future__ import annotations

import asyncio
import logging

from telegram import Chat, ChatMember, Message, Update
from telegram.error import Forbidden, TelegramError
from telegram.ext import ContextTypes

from captioning import CaptioningError

from . import replies
from .albums import describe_album
from .asking import answer_caption
from .describing import TooBigForTelegram, describe_message, describe_one, problem
from .journal import keep_pending
from .services import services
from .store import LANGUAGES

__all__ = [
    "auto_command",
    "describe_command",
    "help_command",
    "lang_command",
    "on_button",
    "on_document",
    "on_error",
    "on_photo",
    "on_private_text",
    "on_unsupported",
]

log = logging.getLogger(__name__)

# A button press answered within this many seconds needs no "working on it" toast.
QUICK_ANSWER_S = 2.0


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: what the bot does, its commands, and what it keeps."""
    await update.effective_message.reply_text(replies.message("help", _lang_of(update)))


async def on_private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Words in a private chat: point the way to what the bot does."""
    await update.effective_message.reply_text(replies.message("send_a_photo", _lang_of(update)))


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo: described in private chats, and in groups while auto is on; albums as one."""
    if _auto_applies(update, context):
        await _describe(update, context)


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A file: described like a photo if its bytes are a picture, whatever it claims to be."""
    if _auto_applies(update, context):
        await _describe(update, context)


async def on_unsupported(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Stickers, animations, videos: a polite "not yet" in private chats, silence in groups."""
    message = update.effective_message
    if not _is_private(update):
        return
    kind = next(k for k in replies.KINDS if getattr(message, k, None))
    lang = _lang_of(update)
    await message.reply_text(replies.message("unsupported_kind", lang, kind=replies.KINDS[kind][lang]))


async def describe_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/describe, sent as a reply to a photo or picture file: describe it, in any mode."""
    target = update.effective_message.reply_to_message
    if target is None or not (target.photo or target.document):
        await update.effective_message.reply_text(replies.message("describe_usage", _lang_of(update)))
        return
    asker = update.effective_user.id if update.effective_user else None
    await describe_message(target, context, loud=True, asker_lang=_lang_of(update), asker_id=asker)


async def auto_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/auto on|off: describe every photo in this chat, or only on /describe."""
    store, chat_id, lang = services(context).store, update.effective_chat.id, _lang_of(update)
    choice = (context.args or [""])[0].lower()
    if choice not in ("on", "off"):
        state = "on" if store.chat_settings(chat_id).auto else "off"
        await update.effective_message.reply_text(replies.message("auto_usage", lang, state=state))
        return
    if await _may_change_settings(update, context):
        store.set_auto(chat_id, choice == "on")
        await update.effective_message.reply_text(replies.message(f"auto_{choice}", lang))


async def lang_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/lang en|es|both: the language of this chat's descriptions."""
    store, chat_id, lang = services(context).store, update.effective_chat.id, _lang_of(update)
    choice = (context.args or [""])[0].lower()
    if choice not in LANGUAGES:
        current = replies.LANGUAGE_NAMES[store.chat_settings(chat_id).lang][lang]
        await update.effective_message.reply_text(replies.message("lang_usage", lang, language=current))
        return
    if await _may_change_settings(update, context):
        store.set_lang(chat_id, choice)  # type: ignore[arg-type]
        name = replies.LANGUAGE_NAMES[choice][lang]
        await update.effective_message.reply_text(replies.message("lang_set", lang, language=name))


async def on_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The buttons under a description: "describe again" in more detail, or "delete"."""
    query, lang = update.callback_query, _lang_of(update)
    action, _, asker = (query.data or "").partition(":")
    message = query.message
    if not isinstance(message, Message) or action not in ("again", "delete"):
        await query.answer()
        return
    if not await _may_use_buttons(update, context, asker):
        await query.answer(replies.message("buttons_not_yours", lang), show_alert=True)
        return
    if action == "delete":
        await message.delete()
        services(context).store.forget_pictures(message.chat_id, message.message_id)
        await query.answer()
        return
    photo = message.reply_to_message
    if photo is None or not (photo.photo or photo.document):
        await query.answer(replies.message("picture_gone", lang), show_alert=True)
        return
    chat_lang = services(context).store.chat_settings(message.chat_id).lang
    describing = asyncio.ensure_future(describe_one(photo, context, patient=False, detailed=True))
    # Telegram shows a spinner until the button press is answered: answer it at once if the
    # description is quick (or refused at once, as when the queue is full: said in an alert),
    # else with a "describing it again" toast, and the description is edited in when ready.
    await asyncio.wait({describing}, timeout=QUICK_ANSWER_S)
    if not describing.done():
        await query.answer(replies.message("describing_again", lang))
    elif describing.exception() is not None:
        error = describing.exception()
        if not isinstance(error, (CaptioningError, TooBigForTelegram)):
            raise error
        await query.answer(problem(error, lang, task="again"), show_alert=True)
        return
    else:
        await query.answer()
    try:
        description = await describing
    except (CaptioningError, TooBigForTelegram) as exc:
        # The old description stays. A private chat hears why; a group isn't told.
        log.info("update %s: describing again failed: %s", update.update_id, type(exc).__name__)
        if _is_private(update):
            await message.reply_text(problem(exc, lang), do_quote=True)
        return
    markup = replies.buttons(int(asker or 0), chat_lang)
    await message.edit_text(replies.describe_reply(description, chat_lang), reply_markup=markup)


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one place errors are logged: ids and the error, never Bot or File objects."""
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    keep_pending(update, context)
    if isinstance(error, Forbidden):  # the user blocked the bot, or it left the group
        log.info("update %s: not allowed to reply: %s", update_id, error)
    elif isinstance(error, TelegramError):
        log.warning("update %s: Telegram error: %s", update_id, error)
    else:
        log.error("update %s: unexpected error", update_id, exc_info=error)


async def _describe(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message, loud = update.effective_message, _is_private(update)
    if message.media_group_id:
        await describe_album(message, context, loud=loud)
    elif await describe_message(message, context, loud=loud) is not None and loud and message.caption:
        await answer_caption(message, context)


def _is_private(update: Update) -> bool:
    return update.effective_chat.type == Chat.PRIVATE


def _auto_applies(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    return _is_private(update) or services(context).store.chat_settings(update.effective_chat.id).auto


def _lang_of(update: Update) -> str:
    user = update.effective_user
    return replies.user_language(user.language_code if user else None)


async def _may_use_buttons(update: Update, context: ContextTypes.DEFAULT_TYPE, asker: str) -> bool:
    """In private chats, yes; in groups, the person who asked or an admin."""
    chat, user = update.effective_chat, update.effective_user
    if chat.type == Chat.PRIVATE or (user is not None and str(user.id) == asker):
        return True
    member = await context.bot.get_chat_member(chat.id, user.id) if user else None
    return member is not None and member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)


async def _may_change_settings(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    """In private chats the user decides; in groups, admins only (asked of Telegram)."""
    chat, message = update.effective_chat, update.effective_message
    if chat.type == Chat.PRIVATE:
        return True
    if message.sender_chat is not None and message.sender_chat.id == chat.id:
        return True  # an anonymous admin, posting as the group itself
    user = update.effective_user
    member = await context.bot.get_chat_member(chat.id, user.id) if user else None
    if member is not None and member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER):
        return True
    await message.reply_text(replies.message("admins_only", _lang_of(update)))
    return False
