"""Questions about a picture: a text reply to the bot's description (or, in a private chat,
to the photo itself) asks BLIP-2 about that picture, and the answer comes back in the
chat's languages.

    reply -> which pictures -> Question (its language detected) -> the executor, one request
    per picture, batched with everyone else's -> one answer message

Telegram nests only one level of ``reply_to_message``: a reply to the bot's description does
not carry the photo the description replied to. So the store remembers which pictures each
of the bot's replies is about (an album's answer: all of them, numbered), and an answer is
remembered the same way, so that a reply to it asks a follow-up question.

A question is put to BLIP-2 in English: one in another language goes through that
language's question model first. A language whose model is off (not configured, or not
loaded) gets a short message that asks for English instead.

In a private chat, a photo sent with a question as its caption is answered too, after its
description. In groups only replies to the bot's own messages count, and only those that read as a
question or a request ("what is he holding?", "describe the background"): "thanks!" said to
the bot is chatter, and the group hears nothing back.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from telegram import Chat, Message, Update, User
from telegram.error import TelegramError

from captioning import Answer, CaptioningError, Stopped, Translated
from captioning.languages import native_name
from captioning.questions import MAX_QUESTION_CHARS, Question, looks_like_a_question, question_language

from .. import replies
from ..chats import translations
from ..context import BotContext, message_of
from ..messages import message as text_of
from ..messages import own_language, user_language
from ..permissions import is_private
from ..pictures import PictureGone, TooBigForTelegram, picture_file
from ..store import PictureRef
from ..updates.journal import Deferred
from .delivery import Delivery
from .tasks import Mode, Outgoing, obtain, owner_id, problem

__all__ = ["answer_caption", "ask", "on_follow_up", "on_reply_text"]

log = logging.getLogger(__name__)


async def on_reply_text(update: Update, context: BotContext) -> None:
    """Text sent as a reply: a question about the pictures the replied-to message is about."""
    message = message_of(update)
    private = is_private(update)
    user = update.effective_user
    ui = user_language(user)
    text = " ".join((message.text or "").split())
    pictures = await _pictures_asked_about(message, context, private=private)
    if not private and (not pictures or not looks_like_a_question(text)):
        return  # chatter, or a reply to the bot that isn't about a picture: not a question
    if not pictures or not re.search(r"\w", text):
        await message.reply_text(text_of("ask_how", ui))
        return
    await ask(message, text, pictures, context, user)


async def on_follow_up(update: Update, context: BotContext) -> None:
    """Text in a private chat that isn't a reply: a question ("and what is she holding?") sent
    within FOLLOW_UP_MINUTES of the bot's last answer about a picture is about that picture
    (or album); anything else points the way to what the bot does."""
    message, svc = message_of(update), context.services
    text = " ".join((message.text or "").split())
    minutes = svc.settings.follow_up_minutes
    if minutes and looks_like_a_question(text):
        pictures = await svc.store.latest_pictures(message.chat_id, time.time() - minutes * 60)
        if pictures:
            await ask(message, text, pictures, context, update.effective_user)
            return
    await message.reply_text(text_of("send_a_photo", user_language(update.effective_user)))


async def answer_caption(message: Message, context: BotContext) -> None:
    """A photo sent in a private chat with a question as its caption ("what does the sign
    say?"): answered in a second reply, after its description. Other captions are left be."""
    text = " ".join((message.caption or "").split())
    if not looks_like_a_question(text):
        return
    picture = picture_file(message, context.services.capabilities.input_size("answer"))
    await ask(message, text, [picture], context, message.from_user)


async def ask(
    message: Message, text: str, pictures: list[PictureRef], context: BotContext, asker: User | None
) -> None:
    """Ask ``text`` of each picture and reply to ``message`` with the answers."""
    svc = context.services
    ui = user_language(asker)
    if len(text) > MAX_QUESTION_CHARS:
        await message.reply_text(text_of("question_too_long", ui, limit=MAX_QUESTION_CHARS))
        return
    capabilities = svc.capabilities
    known = ("en", *capabilities.languages, *capabilities.question_languages)
    question = Question(text, question_language(text, hint=own_language(asker), languages=known))
    if question.language not in capabilities.question_languages:
        await message.reply_text(
            text_of("question_language_off", ui, language=native_name(question.language))
        )
        return
    languages = await context.languages(message.chat, asker)
    # One picture in a private chat: a conversation, which a chat model hears before the question.
    talk = (
        (message.chat_id, pictures[0].unique_id)
        if message.chat.type == Chat.PRIVATE and len(pictures) == 1
        else None
    )
    earlier = svc.conversations.earlier(talk) if talk else ()
    task = Answer(question, translations(languages), earlier)
    async with svc.presence.working(message):
        results = await asyncio.gather(
            *(obtain(context, message, p, task, mode=Mode.ASKED, asker=asker) for p in pictures),
            return_exceptions=True,
        )
        if talk and isinstance(results[0], Translated):
            svc.conversations.add(talk, question, results[0].english)
        for result in results:
            if isinstance(result, (TelegramError, Deferred, Stopped)):
                # Telegram unreachable, or the bot stopping: the journal keeps the question.
                raise result
        said: list[Translated | str] = [r if isinstance(r, Translated) else _explain(r, ui) for r in results]
        markup = svc.actions.buttons("answer", languages, capabilities)
        outgoing = Outgoing([replies.answer_reply(said, languages, ui)], markup)
        answered = any(isinstance(r, Translated) for r in results)
        delivery = await Delivery.start(context, message, "answer")
        await delivery.send(outgoing, owner=owner_id(message, asker), pictures=pictures if answered else [])


async def _pictures_asked_about(message: Message, context: BotContext, *, private: bool) -> list[PictureRef]:
    """The pictures a reply asks about: those of the bot's message it replies to, or (in a
    private chat) the photo or picture file it replies to."""
    target = message.reply_to_message
    if target is None:
        return []
    if target.from_user is not None and target.from_user.id == context.bot.id:
        return await context.services.store.pictures_of(target.chat_id, target.message_id)
    if private and (target.photo or target.document):
        return [picture_file(target, context.services.capabilities.input_size("answer"))]
    return []


def _explain(error: BaseException, ui: str) -> str:
    if isinstance(error, PictureGone):
        return text_of("picture_gone", ui)
    if not isinstance(error, (CaptioningError, TooBigForTelegram)):
        log.error("Answering a question failed", exc_info=error)
    return problem(error, ui, task="answer")
