"""Photos sent together (one ``media_group_id``) get one answer, numbered in their order.

Telegram delivers an album as separate updates, over a second or two. The first photo's
handler leads: it waits until no new photo has joined for ``QUIET_S``, describes them all
(the executor batches them), and sends one reply to the first photo. The other handlers
wait for that reply, so that every photo's update is marked done only once it is answered;
after a restart the journal replays an unfinished album's updates together, and they are
gathered again the same way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from telegram import Message
from telegram.ext import ContextTypes

from captioning import Description

from . import replies
from .describing import describe_one, keep_typing, picture_file
from .services import services

__all__ = ["QUIET_S", "Albums", "describe_album"]

QUIET_S = 1.5


@dataclass(eq=False)
class _Album:
    messages: list[Message] = field(default_factory=list)
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    answered: asyncio.Event = field(default_factory=asyncio.Event)

    async def settle(self, quiet_s: float) -> None:
        """Return once no photo has joined for ``quiet_s`` seconds."""
        while True:
            self.joined.clear()
            try:
                await asyncio.wait_for(self.joined.wait(), quiet_s)
            except TimeoutError:
                return


class Albums:
    """The albums still gathering photos, by chat and media_group_id."""

    def __init__(self) -> None:
        self._open: dict[tuple[int, str], _Album] = {}

    def join(self, message: Message) -> tuple[_Album, bool]:
        """Add the photo to its album; True for the first photo, whose handler leads."""
        key = (message.chat_id, message.media_group_id or "")
        album = self._open.get(key)
        leader = album is None
        if album is None:
            album = self._open[key] = _Album()
        if all(m.message_id != message.message_id for m in album.messages):  # a replay twice
            album.messages.append(message)
        album.joined.set()
        return album, leader

    def close(self, message: Message) -> None:
        self._open.pop((message.chat_id, message.media_group_id or ""), None)


async def describe_album(message: Message, context: ContextTypes.DEFAULT_TYPE, *, loud: bool) -> None:
    """One reply for the whole album; every photo's handler returns once it is sent."""
    svc = services(context)
    album, leader = svc.albums.join(message)
    if not leader:
        await album.answered.wait()
        return
    typing = asyncio.create_task(keep_typing(context, message))
    try:
        await album.settle(QUIET_S)
        svc.albums.close(message)  # photos arriving from now on start a new answer
        members = sorted(album.messages, key=lambda m: m.message_id)
        results: list[Description | BaseException] = await asyncio.gather(
            *(describe_one(m, context, patient=not loud) for m in members), return_exceptions=True
        )
        if not loud and not any(isinstance(r, Description) for r in results):
            return  # nothing to say, and a group doesn't want to hear about it
        user = message.from_user
        lang = replies.user_language(user.language_code if user else None)
        chat_lang = svc.store.chat_settings(message.chat_id).lang
        text = replies.album_reply(results, chat_lang, lang)
        markup = replies.buttons(user.id if user else 0, chat_lang, again=False)
        sent = await members[0].reply_text(text, do_quote=True, reply_markup=markup)
        # A question in reply to this answer is asked of every picture, numbered the same way.
        size = svc.describer.input_size
        svc.store.remember_pictures(sent.chat_id, sent.message_id, [picture_file(m, size) for m in members])
    finally:
        typing.cancel()
        svc.albums.close(message)
        album.answered.set()
