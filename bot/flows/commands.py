"""The commands that are about the chat, not a picture: /help, /auto, /autoread, /lang, /forget; and a
group that becomes a supergroup, and anything else said in a private chat."""

from __future__ import annotations

import logging
import re

from telegram import Update

from captioning.languages import native_name

from .. import replies
from ..context import BotContext, chat_of, message_of
from ..messages import message, user_language

__all__ = [
    "auto_command",
    "autoread_command",
    "detail_command",
    "forget_command",
    "help_command",
    "lang_command",
    "on_migrate",
    "on_private_other",
]

log = logging.getLogger(__name__)

LANGUAGE_CODE = re.compile(r"[a-z]{2}")
# /detail's words, in each interface language.
DETAIL = {"short": "short", "long": "long", "corto": "short", "breve": "short", "largo": "long"}


async def help_command(update: Update, context: BotContext) -> None:
    """/start and /help: what the bot does, its commands, and what it keeps."""
    hours = f"{context.services.store.read_text_kept_s / 3600:g}"
    await message_of(update).reply_text(
        message("help", user_language(update.effective_user), read_hours=hours)
    )


async def forget_command(update: Update, context: BotContext) -> None:
    """/forget: everything the bot keeps about this chat deleted (by an admin, in a group), and
    what that was said. The messages in the chat are Telegram's: they stay."""
    chat_id, ui = chat_of(update).id, user_language(update.effective_user)
    if not await _may_change_settings(update, context):
        return
    gone = await context.services.store.forget_chat(chat_id)
    if not (gone.settings or gone.replies or gone.pictures):
        await message_of(update).reply_text(message("forgotten_nothing", ui))
        return
    await message_of(update).reply_text(
        message("forgotten", ui, pictures=gone.pictures, replies=gone.replies)
    )


async def on_private_other(update: Update, context: BotContext) -> None:
    """Anything else in a private chat (words, a place, a contact, a poll, dice): point the way
    to what the bot does."""
    await message_of(update).reply_text(message("send_a_photo", user_language(update.effective_user)))


async def auto_command(update: Update, context: BotContext) -> None:
    """/auto on|off: describe every photo in this chat, or only on /describe."""
    await _switch(update, context, "auto")


async def autoread_command(update: Update, context: BotContext) -> None:
    """/autoread on|off: read the text of pictures that are mostly text without being asked."""
    await _switch(update, context, "autoread")


async def detail_command(update: Update, context: BotContext) -> None:
    """/detail short|long: one sentence for each picture in this chat, or a paragraph."""
    chat_id, ui = chat_of(update).id, user_language(update.effective_user)
    choice = DETAIL.get((context.args or [""])[0].lower())
    if choice is None:
        state = "long" if (await context.chat_settings(chat_id)).detailed else "short"
        await message_of(update).reply_text(message("detail_usage", ui, state=message(f"detail.{state}", ui)))
        return
    if await _may_change_settings(update, context):
        await context.change_chat(chat_id, detailed=choice == "long")
        await message_of(update).reply_text(message(f"detail_{choice}", ui))


async def _switch(update: Update, context: BotContext, name: str) -> None:
    """/<name> on|off turns a chat's setting on or off (admins only in groups); /<name> alone
    says what it is."""
    chat_id, ui = chat_of(update).id, user_language(update.effective_user)
    choice = (context.args or [""])[0].lower()
    if choice not in ("on", "off"):
        state = "on" if getattr(await context.chat_settings(chat_id), name) else "off"
        await message_of(update).reply_text(message(f"{name}_usage", ui, state=state))
        return
    if await _may_change_settings(update, context):
        await context.change_chat(chat_id, **{name: choice == "on"})
        await message_of(update).reply_text(message(f"{name}_{choice}", ui))


async def lang_command(update: Update, context: BotContext) -> None:
    """/lang en fr: the languages of this chat's descriptions, in order; /lang alone shows
    the choices as buttons that add or remove each one."""
    chat, ui = chat_of(update), user_language(update.effective_user)
    available = context.services.capabilities.languages
    current = await context.languages(chat, update.effective_user)
    words = [w.lower() for w in context.args or []]
    if not words:
        example = " ".join(available[:2])
        text = message("lang_usage", ui, current=_names(current), example=example)
        await message_of(update).reply_text(text, reply_markup=replies.lang_keyboard(available, current))
        return
    # Who may change it is asked first; and what people wrote is never said back, but a
    # language code (two letters): it could be anything, @everyone and links included.
    if not await _may_change_settings(update, context):
        return
    wanted = ["en", "es"] if words == ["both"] else list(dict.fromkeys(words))
    if not all(LANGUAGE_CODE.fullmatch(w) for w in wanted):
        text = message("lang_codes", ui, example=" ".join(available[:2]), choices=" ".join(available))
        await message_of(update).reply_text(text)
        return
    unknown = [w for w in wanted if w not in available]
    if unknown:
        text = message("lang_unknown", ui, unknown=", ".join(unknown), choices=" ".join(available))
        await message_of(update).reply_text(text)
        return
    await context.change_chat(chat.id, languages=tuple(wanted))
    await message_of(update).reply_text(message("lang_set", ui, languages=_names(wanted)))


async def on_migrate(update: Update, context: BotContext) -> None:
    """A group became a supergroup: its settings and replies move to the new chat id."""
    msg = message_of(update)
    # Telegram sends both: "moved to" in the old group, "moved from" in the new one.
    old = msg.chat_id if msg.migrate_to_chat_id else msg.migrate_from_chat_id
    new = msg.migrate_to_chat_id or msg.chat_id
    if old is None:
        return
    await context.services.store.migrate_chat(old, new)
    log.info("Chat %s is now %s; its settings moved with it", old, new)


async def _may_change_settings(update: Update, context: BotContext) -> bool:
    if await context.services.members.may_change_settings(update):
        return True
    await message_of(update).reply_text(message("admins_only", user_language(update.effective_user)))
    return False


def _names(languages: tuple[str, ...] | list[str]) -> str:
    return ", ".join(native_name(code) for code in languages)
