"""Where things are in a picture: "Where things are" under a description, or /where (/donde)
as a reply to a picture -> Locate() through the executor -> "On the left: a person. In the
middle: a dog and a bicycle." in the chat's languages, labelled as automatic.

The words come from the models (Florence-2's ``<OD>``, put in words by
:mod:`captioning.layout`); the answer is cached, journaled and delivered as any other.
"""

from __future__ import annotations

from telegram import Message, User

from captioning.tasks import Locate, Translated

from .. import replies
from ..chats import translations
from ..context import BotContext
from ..messages import user_language
from ..pictures import picture_file
from .tasks import Mode, Outgoing, run_task

__all__ = ["where_message"]


async def where_message(
    target: Message, context: BotContext, *, mode: Mode, asker: User | None = None
) -> Translated | None:
    """Say where things are in the picture in ``target``, in a reply to it."""
    person = asker or target.from_user
    languages = await context.languages(target.chat, person)
    picture = picture_file(target, context.services.capabilities.input_size("where"))

    def render(result: Translated) -> Outgoing:
        return Outgoing([replies.labelled_reply(result, languages, user_language(person), "where")])

    task = Locate(translations(languages))
    located: Translated | None = await run_task(
        context, target, picture, task, mode=mode, render=render, asker=asker
    )
    return located
