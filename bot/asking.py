"""Questions about a picture: a text reply to the bot's description (or, in a private chat,
to the photo itself) asks BLIP-2 about that picture, and the answer comes back in the
chat's languages.

    reply -> which pictures -> Question (its language detected) -> the executor, one request
    per picture, batched with everyone else's -> one answer message

Telegram nests only one level of ``reply_to_message``: a reply to the bot's description does
not carry the photo the description replied to. So the store remembers which pictures each
of the bot's replies is about (an album's answer: all of them, numbered), and an answer is
remembered the same way, so that a reply to it asks a follow-up question.

In a private chat, a photo sent with a question as its caption is answered too, after its
description. In groups only replies to the bot's own messages count, and only those that read as a
question or a request ("what is he holding?", "describe the background"): "thanks!" said to
the bot is chatter, and the group hears nothing back.
"""

from __future__ import annotations

import asyncio
import logging
import re

from telegram import Chat, Message, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ContextTypes

from captioning import CaptioningError, Description
from captioning.questions import MAX_QUESTION_CHARS, Question, looks_like_a_question, question_language

from . import replies
from .describing import TooBigForTelegram, download, keep_typing, picture_file, problem, submit
from .services import services
from .store import PictureRef

__all__ = ["answer_caption", "ask", "on_reply_text"]

log = logging.getLogger(__name__)


async def on_reply_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Text sent as a reply: a question about the pictures the replied-to message is about."""
    message = update.effective_message
    private = update.effective_chat.type == Chat.PRIVATE
    user = update.effective_user
    lang = replies.user_language(user.language_code if user else None)
    text = " ".join((message.text or "").split())
    pictures = _pictures_asked_about(message, context, private=private)
    if not private and (not pictures or not looks_like_a_question(text)):
        return  # chatter, or a reply to the bot that isn't about a picture: not a question
    if not pictures or not re.search(r"\w", text):
        await message.reply_text(replies.message("ask_how", lang))
        return
    await ask(message, text, pictures, context, lang)


async def answer_caption(message: Message, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A photo sent in a private chat with a question as its caption ("what does the sign
    say?"): answered in a second reply, after its description. Other captions are left be."""
    text = " ".join((message.caption or "").split())
    if not looks_like_a_question(text):
        return
    user = message.from_user
    lang = replies.user_language(user.language_code if user else None)
    await ask(message, text, [picture_file(message, services(context).describer.input_size)], context, lang)


async def ask(
    message: Message, text: str, pictures: list[PictureRef], context: ContextTypes.DEFAULT_TYPE, lang: str
) -> None:
    """Ask ``text`` of each picture and reply to ``message`` with the answers."""
    if len(text) > MAX_QUESTION_CHARS:
        await message.reply_text(replies.message("question_too_long", lang, limit=MAX_QUESTION_CHARS))
        return
    question = Question(text, question_language(text, hint=lang))
    svc = services(context)
    user = message.from_user
    asker = user.id if user else message.chat_id
    typing = asyncio.create_task(keep_typing(context, message))
    try:
        results = await asyncio.gather(
            *(_answer(p, question, message.chat_id, asker, context) for p in pictures), return_exceptions=True
        )
        for result in results:
            if isinstance(result, TelegramError) and not isinstance(result, BadRequest):
                # Telegram unreachable: the error handler keeps the update for a replay.
                raise result
        said: list[Description | str] = [
            r if isinstance(r, Description) else _explain(r, lang) for r in results
        ]
        chat_lang = svc.store.chat_settings(message.chat_id).lang
        markup = replies.buttons(asker, chat_lang, again=False)
        sent = await message.reply_text(
            replies.answer_reply(said, chat_lang, lang), do_quote=True, reply_markup=markup
        )
        if any(isinstance(r, Description) for r in results):
            svc.store.remember_pictures(sent.chat_id, sent.message_id, pictures)  # follow-ups
    finally:
        typing.cancel()


def _pictures_asked_about(
    message: Message, context: ContextTypes.DEFAULT_TYPE, *, private: bool
) -> list[PictureRef]:
    """The pictures a reply asks about: those of the bot's message it replies to, or (in a
    private chat) the photo or picture file it replies to."""
    target = message.reply_to_message
    if target is None:
        return []
    if target.from_user is not None and target.from_user.id == context.bot.id:
        return services(context).store.pictures_of(target.chat_id, target.message_id)
    if private and (target.photo or target.document):
        return [picture_file(target, services(context).describer.input_size)]
    return []


async def _answer(
    picture: PictureRef, question: Question, chat_id: int, asker: int, context: ContextTypes.DEFAULT_TYPE
) -> Description:
    data = await download(context, picture)
    ticket = await submit(services(context).describer, data, chat_id, asker, patient=False, question=question)
    return await ticket.result()


def _explain(error: BaseException, lang: str) -> str:
    if isinstance(error, BadRequest):  # Telegram no longer has the file
        return replies.message("picture_gone", lang)
    if not isinstance(error, (CaptioningError, TooBigForTelegram)):
        log.error("Answering a question failed", exc_info=error)
    return problem(error, lang, task="answer")
