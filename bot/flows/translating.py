"""Translating a text read out: "Translate" under it gives the text in the chat's other
languages, all of them, keeping its lines; past three messages' worth, the start and the whole
as a file (a language is never left out for want of room). Translations are kept with the
picture's text, so a second press costs no model work, and the answer, like every answer, is
sent part by part (:mod:`.delivery`).
"""

from __future__ import annotations

from telegram import Update

from captioning import Busy, RequestTimeout, Stopped, Translate, Translated
from captioning.languages import native_name

from .. import replies
from ..chats import translations
from ..context import BotContext, query_of
from ..messages import message, user_language
from ..permissions import is_private
from ..store import PictureRef
from .buttons import pressable
from .delivery import Delivery, Outgoing
from .reading import MAX_MESSAGES, split_text
from .tasks import owner_id, problem, submit

__all__ = ["on_translate"]


async def on_translate(update: Update, context: BotContext) -> None:
    """ "Translate" under a text read: the text in the chat's other languages."""
    query, ui = query_of(update), user_language(update.effective_user)
    reply = await pressable(update, context)
    if reply is None:
        return
    svc = context.services
    pictures = await svc.store.pictures_of(reply.chat_id, reply.message_id)
    read = await svc.store.cached_texts(pictures[0].unique_id, "read") if pictures else {}
    others = translations(await context.languages(reply.chat, update.effective_user))
    if "" not in read or not others:
        await query.answer(message("picture_gone", ui), show_alert=True)
        return
    kept = await svc.store.cached_texts(pictures[0].unique_id, "translate")
    missing = tuple(code for code in others if code not in kept)
    try:
        ticket = (
            submit(context, reply, None, Translate(read[""], missing), asker=update.effective_user)
            if missing
            else None
        )
    except Busy as exc:
        await query.answer(problem(exc, ui, task="again"), show_alert=True)
        return
    await query.answer()
    try:
        result: Translated = await ticket.result() if ticket is not None else Translated(read[""])
    except (Busy, RequestTimeout, Stopped) as exc:
        if is_private(update):
            await reply.reply_text(problem(exc, ui), do_quote=True)
        return
    await _keep(context, pictures[0], result)
    texts = {**kept, **result.translations}
    delivery = await Delivery.start(context, reply, "translate")
    outgoing = _outgoing({code: texts[code] for code in others if texts.get(code)}, ui)
    await delivery.send(outgoing, owner=owner_id(reply, update.effective_user), pictures=[])


async def _keep(context: BotContext, picture: PictureRef, result: Translated) -> None:
    if result.translations:
        await context.services.store.cache_texts(picture.unique_id, "translate", dict(result.translations))


def _outgoing(texts: dict[str, str], ui: str) -> Outgoing:
    """Each language's translation under its name; past MAX_MESSAGES, the start and a file."""
    whole = "\n\n".join(_translation(native_name(code), replies.inert(text)) for code, text in texts.items())
    parts = split_text(whole)
    if len(parts) <= MAX_MESSAGES:
        return Outgoing(parts)
    caption = message("translation_file", ui, count=len(whole))
    return Outgoing(parts[:1], document=(whole.encode("utf-8"), "translations.txt", caption))


def _translation(name: str, text: str) -> str:
    """One line: "Español: ..."; several: the name on its own line, then the lines as read."""
    return f"{name}:\n{text}" if "\n" in text else f"{name}: {text}"
