"""A picture arrives: a photo, or a file whose bytes may be one (whatever it claims to be).

In a private chat it is described (or, with "read" as its caption, read; with a question as
its caption, described and then answered); in a group while ``/auto`` is on, described without
a word about problems; an album is answered as one. Stickers, animations and videos get a
polite "not yet" in private chats, and silence in groups.
"""

from __future__ import annotations

from telegram import Update

from ..context import BotContext, chat_of, message_of
from ..messages import message, user_language
from ..permissions import is_private
from ..pictures import might_be_a_picture
from .albums import describe_album
from .asking import answer_caption
from .describing import describe_message
from .reading import read_if_mostly_text, read_message, wants_reading
from .tasks import Mode

__all__ = ["UNSUPPORTED_KINDS", "on_document", "on_photo", "on_unsupported"]

UNSUPPORTED_KINDS = ("sticker", "animation", "video", "video_note")


async def on_photo(update: Update, context: BotContext) -> None:
    """A photo: described in private chats, and in groups while auto is on; albums as one."""
    if await _auto_applies(update, context):
        await _describe(update, context)


async def on_document(update: Update, context: BotContext) -> None:
    """A file: described like a photo if its bytes are a picture, whatever it claims to be. In
    a group, a file that clearly isn't one (a zip, a video sent as a file) isn't downloaded."""
    document = message_of(update).document
    if not is_private(update) and document is not None and not might_be_a_picture(document):
        return
    if await _auto_applies(update, context):
        await _describe(update, context)


async def on_unsupported(update: Update, context: BotContext) -> None:
    """Stickers, animations, videos: a polite "not yet" in private chats, silence in groups."""
    if not is_private(update):
        return
    msg, ui = message_of(update), user_language(update.effective_user)
    kind = next(k for k in UNSUPPORTED_KINDS if getattr(msg, k, None))
    await msg.reply_text(message("unsupported_kind", ui, kind=message(f"kind.{kind}", ui)))


async def _describe(update: Update, context: BotContext) -> None:
    msg = message_of(update)
    mode = Mode.ASKED if is_private(update) else Mode.UNASKED
    if msg.media_group_id:
        await describe_album(msg, context, mode=mode)
    elif mode is Mode.ASKED and wants_reading(msg.caption) and context.services.capabilities.can("read"):
        await read_message(msg, context, mode=mode)  # "read" as its caption: read, not described
    else:
        description = await describe_message(msg, context, mode=mode)
        await read_if_mostly_text(msg, context, description)
        if description is not None and mode is Mode.ASKED and msg.caption:
            await answer_caption(msg, context)


async def _auto_applies(update: Update, context: BotContext) -> bool:
    return is_private(update) or (await context.chat_settings(chat_of(update).id)).auto
