"""An answer under a picture, sent part by part and kept track of in the store.

Each answer has a key that names it: the update and what it answers (``<update>:describe``),
or an album. What it sent is written down part by part (:mod:`bot.store.replies`): the
"queued" reply as part 0, then each message, then a file. So the same answer tried again, or
replayed after a crash, edits the queued reply it left instead of sending a second one, sends
only the parts not sent yet, and "Delete" finds every message it sent.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardMarkup, Message
from telegram.error import BadRequest, TelegramError

from ..context import BotContext
from ..store import PictureRef

__all__ = ["Delivery", "Outgoing", "default_key", "unchanged"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """What a result becomes in the chat: messages (the markup under the last), and a file."""

    parts: Sequence[str]
    markup: InlineKeyboardMarkup | None = None
    document: tuple[bytes, str, str] | None = None  # (bytes, file name, caption), after the parts


def unchanged(exc: BadRequest) -> bool:
    """Whether Telegram refused an edit for changing nothing ("message is not modified")."""
    return "not modified" in str(exc).lower()


def default_key(context: BotContext, target: Message, answer: str) -> str:
    """What an answer is named by: this update's ``answer`` to ``target``."""
    return f"{context.update_id}:{answer}:{target.message_id}"


class Delivery:
    """The answer ``key`` under ``target``; :meth:`start` reads what it has sent already."""

    def __init__(self, context: BotContext, target: Message, key: str, answer: str) -> None:
        self.context, self.target, self.key, self.answer = context, target, key, answer
        self.store = context.services.store
        self.sent: dict[int, tuple[int, int]] = {}  # part -> (chat id, message id)
        self.picture: str | None = None  # the one picture the answer is about, if one

    @classmethod
    async def start(
        cls, context: BotContext, target: Message, answer: str, key: str | None = None
    ) -> Delivery:
        """The answer ``answer`` of this update to ``target`` (or the one ``key`` names)."""
        delivery = cls(context, target, key or default_key(context, target, answer), answer)
        delivery.sent = await delivery.store.sent(delivery.key)
        return delivery

    async def queued(self, text: str) -> None:
        """The "queued" reply, unless this answer has sent anything already (a retry, a replay)."""
        if not self.sent:
            message = await self.target.reply_text(text, do_quote=True)
            await self._record(0, message.chat_id, message.message_id)

    async def send(self, outgoing: Outgoing, *, owner: int, pictures: Sequence[PictureRef]) -> None:
        """The parts not sent yet, each remembered with who asked and which pictures it is about
        (a message about no picture is not)."""
        self.picture = pictures[0].unique_id if len(pictures) == 1 else None
        for number, text in enumerate(outgoing.parts, start=1):
            if number in self.sent:
                continue  # sent before this try
            last = number == len(outgoing.parts)
            chat_id, message_id = await self._put(number, text, outgoing.markup if last else None)
            if pictures:
                await self.store.remember_reply(chat_id, message_id, owner, pictures)
        after = len(outgoing.parts) + 1
        if outgoing.document is not None and after not in self.sent:
            data, name, caption = outgoing.document
            document = await self.target.reply_document(
                io.BytesIO(data), filename=name, caption=caption, do_quote=True
            )
            await self._record(after, document.chat_id, document.message_id)

    async def say(self, text: str) -> None:
        """One message that is the whole answer (a problem, said), in place of the queued reply."""
        await self.send(Outgoing([text]), owner=0, pictures=())

    async def withdraw(self) -> None:
        """No answer after all (a silent problem): the queued reply, if any, goes."""
        if 0 in self.sent:
            chat_id, message_id = self.sent.pop(0)
            try:
                await self.context.bot.delete_message(chat_id, message_id)
            except TelegramError as exc:
                log.info("Couldn't take back a queued reply: %s", exc)
            await self.store.forget_sent(self.key, 0)

    async def _put(self, number: int, text: str, markup: InlineKeyboardMarkup | None) -> tuple[int, int]:
        """Part ``number``: the queued reply edited into it (the first part), else a new reply."""
        if number == 1 and 0 in self.sent:
            chat_id, message_id = self.sent[0]
            edited = await self._edit(chat_id, message_id, text, markup)  # a network error: tried again
            del self.sent[0]
            await self.store.forget_sent(self.key, 0)
            if edited:
                await self._record(1, chat_id, message_id)
                return chat_id, message_id
        message = await self.target.reply_text(text, do_quote=True, reply_markup=markup)
        await self._record(number, message.chat_id, message.message_id)
        return message.chat_id, message.message_id

    async def _edit(
        self, chat_id: int, message_id: int, text: str, markup: InlineKeyboardMarkup | None
    ) -> bool:
        """The queued reply edited into ``text``; False when it is gone (deleted by someone)."""
        try:
            await self.context.bot.edit_message_text(
                text, chat_id=chat_id, message_id=message_id, reply_markup=markup
            )
        except BadRequest as exc:
            return unchanged(exc)
        return True

    async def _record(self, number: int, chat_id: int, message_id: int) -> None:
        self.sent[number] = (chat_id, message_id)
        await self.store.record_sent(self.key, number, chat_id, message_id, self.answer, self.picture)
