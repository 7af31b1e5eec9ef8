"""What the handlers reach through ``context.bot_data``: settings, store, describer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from telegram.ext import ContextTypes

from captioning import Description

from .settings import BotSettings
from .store import Store

__all__ = ["Describer", "Services", "services"]

KEY = "services"


class Describer(Protocol):
    """The engine as the bot sees it: bytes in, a description out, off the event loop."""

    @property
    def input_size(self) -> int: ...

    async def describe(self, picture: bytes) -> Description: ...


@dataclass
class Services:
    settings: BotSettings
    store: Store
    describer: Describer | None = None  # set in post_init, once the models are loaded


def services(context: ContextTypes.DEFAULT_TYPE) -> Services:
    return context.bot_data[KEY]
