"""One small async function per kind of update: commands, photos, files, text, and the rest."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import BotCommand, Update
from telegram.ext import Application

from captioning.languages import native_name

from . import replies
from .albums import describe_album
from .asking import answer_caption
from .chats import chat_languages
from .context import BotContext
from .describing import describe_message
from .messages import CATALOG, COMMAND_NAMES, COMMANDS, READING_COMMANDS, message, user_language
from .permissions import is_private
from .reading import read_if_mostly_text, read_message, wants_reading
from .store import ChatSettings, StoreUnavailable

__all__ = [
    "auto_command",
    "autoread_command",
    "describe_command",
    "help_command",
    "lang_command",
    "mark_done",
    "on_document",
    "on_error",
    "on_migrate",
    "on_photo",
    "on_private_other",
    "on_unsupported",
    "register_commands",
]

log = logging.getLogger(__name__)

UNSUPPORTED_KINDS = ("sticker", "animation", "video", "video_note")


async def help_command(update: Update, context: BotContext) -> None:
    """/start and /help: what the bot does, its commands, and what it keeps."""
    await update.effective_message.reply_text(message("help", user_language(update.effective_user)))


async def on_private_other(update: Update, context: BotContext) -> None:
    """Anything else in a private chat (words, a place, a contact, a poll, dice): point the way
    to what the bot does."""
    await update.effective_message.reply_text(message("send_a_photo", user_language(update.effective_user)))


async def on_photo(update: Update, context: BotContext) -> None:
    """A photo: described in private chats, and in groups while auto is on; albums as one."""
    if await _auto_applies(update, context):
        await _describe(update, context)


async def on_document(update: Update, context: BotContext) -> None:
    """A file: described like a photo if its bytes are a picture, whatever it claims to be."""
    if await _auto_applies(update, context):
        await _describe(update, context)


async def on_unsupported(update: Update, context: BotContext) -> None:
    """Stickers, animations, videos: a polite "not yet" in private chats, silence in groups."""
    if not is_private(update):
        return
    msg, ui = update.effective_message, user_language(update.effective_user)
    kind = next(k for k in UNSUPPORTED_KINDS if getattr(msg, k, None))
    await msg.reply_text(message("unsupported_kind", ui, kind=message(f"kind.{kind}", ui)))


async def describe_command(update: Update, context: BotContext) -> None:
    """/describe, sent as a reply to a photo or picture file: describe it, in any mode."""
    target = update.effective_message.reply_to_message
    if target is None or not (target.photo or target.document):
        await update.effective_message.reply_text(
            message("describe_usage", user_language(update.effective_user))
        )
        return
    # The person who asked owns the reply's buttons, and the request counts against their quota.
    description = await describe_message(target, context, loud=True, asker=update.effective_user)
    await read_if_mostly_text(target, context, description, asker=update.effective_user)


async def auto_command(update: Update, context: BotContext) -> None:
    """/auto on|off: describe every photo in this chat, or only on /describe."""
    store = context.services.store
    await _switch(update, context, "auto", lambda chat: chat.auto, store.set_auto)


async def autoread_command(update: Update, context: BotContext) -> None:
    """/autoread on|off: read the text of pictures that are mostly text without being asked."""
    store = context.services.store
    await _switch(update, context, "autoread", lambda chat: chat.autoread, store.set_autoread)


async def _switch(
    update: Update,
    context: BotContext,
    name: str,
    current: Callable[[ChatSettings], bool],
    change: Callable[[int, bool], Awaitable[None]],
) -> None:
    """/<name> on|off turns a chat's setting on or off (admins only in groups); /<name> alone
    says what it is."""
    chat_id, ui = update.effective_chat.id, user_language(update.effective_user)
    choice = (context.args or [""])[0].lower()
    if choice not in ("on", "off"):
        state = "on" if current(await context.services.store.chat_settings(chat_id)) else "off"
        await update.effective_message.reply_text(message(f"{name}_usage", ui, state=state))
        return
    if await _may_change_settings(update, context):
        await change(chat_id, choice == "on")
        await update.effective_message.reply_text(message(f"{name}_{choice}", ui))


async def lang_command(update: Update, context: BotContext) -> None:
    """/lang en fr: the languages of this chat's descriptions, in order; /lang alone shows
    the choices as buttons that add or remove each one."""
    svc, chat, ui = context.services, update.effective_chat, user_language(update.effective_user)
    available = svc.describer.languages
    current = await chat_languages(svc, chat, update.effective_user)
    words = [w.lower() for w in context.args or []]
    if not words:
        example = " ".join(available[:2])
        text = message("lang_usage", ui, current=_names(current), example=example)
        await update.effective_message.reply_text(
            text, reply_markup=replies.lang_keyboard(available, current)
        )
        return
    wanted = ["en", "es"] if words == ["both"] else list(dict.fromkeys(words))
    unknown = [w for w in wanted if w not in available]
    if unknown:
        text = message("lang_unknown", ui, unknown=", ".join(unknown), choices=" ".join(available))
        await update.effective_message.reply_text(text)
        return
    if await _may_change_settings(update, context):
        await svc.store.set_languages(chat.id, wanted)
        await update.effective_message.reply_text(message("lang_set", ui, languages=_names(wanted)))


async def on_migrate(update: Update, context: BotContext) -> None:
    """A group became a supergroup: its settings and replies move to the new chat id."""
    msg = update.effective_message
    if msg.migrate_to_chat_id:
        old, new = msg.chat_id, msg.migrate_to_chat_id
    else:
        old, new = msg.migrate_from_chat_id, msg.chat_id
    await context.services.store.migrate_chat(old, new)
    log.info("Chat %s is now %s; its settings moved with it", old, new)


async def on_error(update: object, context: BotContext) -> None:
    """The one place errors are logged: ids and the error, never Bot or File objects.

    The journal decides what becomes of the update: done, tried again later, or set aside.
    """
    error = context.error
    if isinstance(error, StoreUnavailable):  # the bot stops; the update waits for the next start
        context.services.fatal(error)
    verdict = context.services.journal.verdict(update, error)
    if verdict == "aside":
        update_id = update.update_id if isinstance(update, Update) else None
        log.error("update %s: unexpected error", update_id, exc_info=error)


async def mark_done(update: Update, context: BotContext) -> None:
    """Last in line for every update: its handlers have finished."""
    await context.services.journal.finished(update)


async def register_commands(application: Application) -> None:
    """The command menu, in every catalog's language (English for everyone else)."""
    reading = application.bot_data.describer.can_read
    for lang, catalog in CATALOG.items():
        names = COMMAND_NAMES.get(lang, {})
        commands = [
            BotCommand(names.get(name, name), catalog[f"command.{name}"])
            for name in COMMANDS
            if reading or name not in READING_COMMANDS
        ]
        await application.bot.set_my_commands(commands, language_code=None if lang == "en" else lang)


async def _describe(update: Update, context: BotContext) -> None:
    msg, loud = update.effective_message, is_private(update)
    if msg.media_group_id:
        await describe_album(msg, context, loud=loud)
    elif loud and wants_reading(msg.caption) and context.services.describer.can_read:
        await read_message(msg, context, loud=True)  # "read" as its caption: read, not described
    else:
        description = await describe_message(msg, context, loud=loud)
        await read_if_mostly_text(msg, context, description)
        if description is not None and loud and msg.caption:
            await answer_caption(msg, context)


async def _auto_applies(update: Update, context: BotContext) -> bool:
    return is_private(update) or (await context.services.store.chat_settings(update.effective_chat.id)).auto


async def _may_change_settings(update: Update, context: BotContext) -> bool:
    if await context.services.members.may_change_settings(update):
        return True
    await update.effective_message.reply_text(message("admins_only", user_language(update.effective_user)))
    return False


def _names(languages) -> str:
    return ", ".join(native_name(code) for code in languages)
