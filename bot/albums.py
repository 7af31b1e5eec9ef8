"""Photos sent together (one ``media_group_id``) get one answer, numbered in their order.

The first photo's handler leads (see :mod:`bot.gathering`): once the album is complete it
describes every photo (the executor batches them) and sends one reply to the first photo.
The other photos' handlers wait for that reply, and fail with the leader's error if it
couldn't be sent, so that every photo's update stays in the journal until the album is
answered; after a restart the journal replays an unfinished album's updates together, and
they are gathered again the same way.
"""

from __future__ import annotations

import asyncio

from telegram import Message

from captioning import Translated

from . import replies
from .chats import chat_languages
from .context import BotContext
from .describing import describe_one, owner_id
from .journal import Deferred
from .messages import user_language
from .pictures import picture_file
from .reading import read_if_mostly_text

__all__ = ["describe_album"]


async def describe_album(message: Message, context: BotContext, *, loud: bool) -> None:
    """One reply for the whole album; every photo's handler returns once it is sent. Then the
    photos that are mostly text get their text read out, each in reply to its photo."""
    svc = context.services
    album, leader = svc.albums.join(message)
    if not leader:
        await album.wait()
        return
    described: list[tuple[Message, Translated]] = []
    try:
        async with svc.presence.working(message):
            if not await album.settle(svc.timings.album_quiet_s, svc.stopping):
                raise Deferred("stopping")
            svc.albums.close(message)  # photos arriving from now on start a new answer
            members = sorted(album.messages, key=lambda m: m.message_id)
            person = message.from_user
            languages = await chat_languages(svc, message.chat, person)
            results: list[Translated | BaseException] = await asyncio.gather(
                *(describe_one(m, context, patient=not loud, languages=languages) for m in members),
                return_exceptions=True,
            )
            deferred = next((r for r in results if isinstance(r, Deferred)), None)
            if deferred is not None:
                raise deferred  # no room now: the whole album is tried again later, as one
            if not loud and not any(isinstance(r, Translated) for r in results):
                album.answered()
                return  # nothing to say, and a group doesn't want to hear about it
            ui = user_language(person)
            text = replies.album_reply(results, languages, ui)
            sent = await members[0].reply_text(
                text, do_quote=True, reply_markup=replies.buttons(languages, again=False)
            )
            # A question in reply to this answer is asked of every picture, numbered the same way.
            size = svc.describer.input_size
            pictures = [picture_file(m, size) for m in members]
            await svc.store.remember_reply(sent.chat_id, sent.message_id, owner_id(message), pictures)
            described = [(m, r) for m, r in zip(members, results, strict=True) if isinstance(r, Translated)]
    except BaseException as exc:
        album.answered(exc)
        raise
    finally:
        svc.albums.close(message)
    album.answered()
    for member, description in described:
        await read_if_mostly_text(member, context, description)
