"""One small async function per kind of update."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Chat, ChatMember, Message, PhotoSize, Update
from telegram.constants import ChatAction, FileSizeLimit
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import ContextTypes

from captioning import InvalidImage

from . import replies
from .services import services
from .store import LANGUAGES

__all__ = [
    "auto_command",
    "describe_command",
    "help_command",
    "lang_command",
    "on_document",
    "on_error",
    "on_photo",
    "on_private_text",
    "on_unsupported",
]

log = logging.getLogger(__name__)

# Telegram shows "typing…" for 5 seconds per chat action; refresh a little sooner.
TYPING_REFRESH_S = 4.0


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/start and /help: what the bot does, its commands, and what it keeps."""
    await update.effective_message.reply_text(replies.message("help", _lang_of(update)))


async def on_private_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Words in a private chat: point the way to what the bot does."""
    await update.effective_message.reply_text(replies.message("send_a_photo", _lang_of(update)))


async def on_photo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo: described in private chats, and in groups while auto is on."""
    if _auto_applies(update, context):
        await describe_message(update.effective_message, context, loud=_is_private(update))


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A file: described like a photo if its bytes are a picture, whatever it claims to be."""
    if _auto_applies(update, context):
        await describe_message(update.effective_message, context, loud=_is_private(update))


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
    await describe_message(target, context, loud=True, asker_lang=_lang_of(update))


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


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one place errors are logged: ids and the error, never Bot or File objects."""
    update_id = update.update_id if isinstance(update, Update) else None
    error = context.error
    if isinstance(error, Forbidden):  # the user blocked the bot, or it left the group
        log.info("update %s: not allowed to reply: %s", update_id, error)
    elif isinstance(error, TelegramError):
        log.warning("update %s: Telegram error: %s", update_id, error)
    else:
        log.error("update %s: unexpected error", update_id, exc_info=error)


# -- the way of one picture --------------------------------------------------------------


async def describe_message(
    target: Message, context: ContextTypes.DEFAULT_TYPE, *, loud: bool, asker_lang: str | None = None
) -> None:
    """Download the picture in ``target``, describe it, and reply to it.

    ``loud`` decides whether problems are explained (private chats, /describe) or ignored
    (automatic descriptions in groups, which must not add noise).
    """
    svc = services(context)
    lang = asker_lang or replies.user_language(target.from_user.language_code if target.from_user else None)
    file_id, size = _picture_file(target, svc.describer.input_size)
    if size is not None and size > FileSizeLimit.FILESIZE_DOWNLOAD:
        if loud:
            size_mb = round(size / 1_000_000)
            await target.reply_text(
                replies.message("too_large_to_download", lang, size_mb=size_mb), do_quote=True
            )
        return
    typing = asyncio.create_task(_keep_typing(context, target))
    try:
        data = await _download(context, file_id)
        description = await svc.describer.describe(bytes(data))
        chat_lang = svc.store.chat_settings(target.chat_id).lang
        await target.reply_text(replies.describe_reply(description, chat_lang), do_quote=True)
    except InvalidImage as exc:
        if loud:
            await target.reply_text(replies.invalid_image(exc.reason, lang), do_quote=True)
    except _TooBigForTelegram:
        if loud:
            await target.reply_text(replies.message("too_large_to_download", lang, size_mb=20), do_quote=True)
    except TelegramError:
        raise  # replying itself failed (blocked, network): the error handler logs it
    except Exception:
        if loud:  # the engine failed: say so, then let the error handler log it
            with contextlib.suppress(TelegramError):
                await target.reply_text(replies.message("failed", lang), do_quote=True)
        raise
    finally:
        typing.cancel()


def choose_photo_size(sizes: tuple[PhotoSize, ...], min_side: int) -> PhotoSize:
    """The smallest size whose short side is at least ``min_side``, else the largest.

    Chosen by the sizes given, not by their order: Telegram's order is not a promise.
    """
    big_enough = [s for s in sizes if min(s.width, s.height) >= min_side]
    if big_enough:
        return min(big_enough, key=lambda s: s.width * s.height)
    return max(sizes, key=lambda s: s.width * s.height)


class _TooBigForTelegram(Exception):
    pass


def _picture_file(message: Message, min_side: int) -> tuple[str, int | None]:
    if message.photo:
        best = choose_photo_size(message.photo, min_side)
        return best.file_id, best.file_size
    return message.document.file_id, message.document.file_size


async def _download(context: ContextTypes.DEFAULT_TYPE, file_id: str) -> bytearray:
    """The file's bytes, in memory only: pictures never touch the disk."""
    try:
        file = await context.bot.get_file(file_id)
    except BadRequest as exc:
        if "too big" in str(exc).lower():
            raise _TooBigForTelegram from exc
        raise
    return await file.download_as_bytearray()


async def _keep_typing(context: ContextTypes.DEFAULT_TYPE, message: Message) -> None:
    """Show "typing…" in the chat (and topic) until cancelled."""
    while True:
        with contextlib.suppress(TelegramError):
            await context.bot.send_chat_action(
                message.chat_id, ChatAction.TYPING, message_thread_id=_thread_id(message)
            )
        await asyncio.sleep(TYPING_REFRESH_S)


def _thread_id(message: Message) -> int | None:
    return message.message_thread_id if message.is_topic_message else None


def _is_private(update: Update) -> bool:
    return update.effective_chat.type == Chat.PRIVATE


def _auto_applies(update: Update, context: ContextTypes.DEFAULT_TYPE) -> bool:
    return _is_private(update) or services(context).store.chat_settings(update.effective_chat.id).auto


def _lang_of(update: Update) -> str:
    user = update.effective_user
    return replies.user_language(user.language_code if user else None)


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
