"""Photos sent together (one ``media_group_id``) get one answer, numbered in their order.

The first photo's handler leads (see :mod:`bot.flows.gathering`): once the album is complete it
describes every photo (the executor batches them) and sends one reply to the first photo.
The other photos' handlers wait for that reply, and fail with the leader's error if it
couldn't be sent, so that every photo's update stays in the journal until the album is
answered; after a restart the journal replays an unfinished album's updates together, and
they are gathered again the same way.
"""

from __future__ import annotations

import asyncio

from telegram import Message

from captioning import Describe, Translated

from .. import replies
from ..chats import translations
from ..context import BotContext
from ..messages import user_language
from ..pictures import picture_file
from ..updates.journal import Deferred
from .delivery import Delivery
from .reading import read_album
from .tasks import Mode, Outgoing, obtain, owner_id

__all__ = ["describe_album"]


def album_key(message: Message) -> str:
    """What an album's answers are named by: the album, whichever of its photos leads."""
    return f"album:{message.chat_id}:{message.media_group_id}"


async def describe_album(message: Message, context: BotContext, *, mode: Mode) -> None:
    """One reply for the whole album, then one for the text of its photos that are mostly
    text; every photo's handler returns once both are sent, so that no photo's update is done
    before its album is: a crash meanwhile replays the whole album, which sends what is missing."""
    svc = context.services
    album, leader = svc.albums.join(message)
    if not leader:
        await album.wait()
        return
    try:
        async with svc.presence.working(message):
            if not await album.settle(svc.timings.album_quiet_s, svc.stopping):
                raise Deferred("stopping")
            svc.albums.close(message)  # photos arriving from now on start a new answer
            members = sorted(album.messages, key=lambda m: m.message_id)
            described = await _answer_album(message, members, context, mode)
            await read_album(members, described, context, key=f"{album_key(message)}:read")
    except BaseException as exc:
        album.answered(exc)
        raise
    finally:
        svc.albums.close(message)
    album.answered()


async def _answer_album(
    leader: Message, members: list[Message], context: BotContext, mode: Mode
) -> list[Translated | None]:
    """Describe every photo (the executor batches them) and send one reply to the first; each
    photo's description, if it has one."""
    svc, person = context.services, leader.from_user
    languages = await context.languages(leader.chat, person)
    detailed = (await context.chat_settings(leader.chat_id)).detailed and svc.capabilities.can(
        "describe_detailed"
    )
    task = Describe(detailed, translations(languages))
    pictures = [picture_file(m, svc.capabilities.input_size(task.kind)) for m in members]
    results: list[Translated | BaseException] = await asyncio.gather(
        *(obtain(context, m, p, task, mode=mode) for m, p in zip(members, pictures, strict=True)),
        return_exceptions=True,
    )
    deferred = next((r for r in results if isinstance(r, Deferred)), None)
    if deferred is not None:
        raise deferred  # no room now: the whole album is tried again later, as one
    if mode is not Mode.ASKED and not any(isinstance(r, Translated) for r in results):
        return [None] * len(members)  # nothing to say, and a group doesn't want to hear about it
    text = replies.album_reply(results, languages, user_language(person))
    outgoing = Outgoing([text], svc.actions.buttons("album", languages, svc.capabilities))
    # A question in reply to this answer is asked of every picture, numbered the same way. The
    # answer is the album's, whichever of its photos' updates leads it (after a restart, say).
    delivery = await Delivery.start(context, members[0], "album", key=album_key(leader))
    await delivery.send(outgoing, owner=owner_id(leader), pictures=pictures)
    return [r if isinstance(r, Translated) else None for r in results]
