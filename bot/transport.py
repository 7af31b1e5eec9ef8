"""python-telegram-bot's httpx transport, with a bound on requests inside httpcore at once.

httpcore's connection pool rescans every queued request against every connection each time
one changes state, so a few hundred requests queued inside it cost more CPU than the bot's
own work. Waiting in an asyncio.Semaphore first is O(1): the pool only ever sees as many
requests as it has connections.
"""

from __future__ import annotations

import asyncio
from typing import Any

from telegram.request import HTTPXRequest

__all__ = ["BoundedRequest"]

# Bot API calls take tens of milliseconds over the internet, so 16 connections carry a few
# hundred requests a second: past Telegram's own limit of about 30 messages/s. More make
# httpcore's bookkeeping cost more than they bring (bench/bot_throughput.py).
CONNECTIONS = 16


class BoundedRequest(HTTPXRequest):
    def __init__(self, connections: int = CONNECTIONS, **kwargs: Any) -> None:
        # A request may wait for a free connection under load; the default pool timeout
        # (1 s) would turn that wait into a failed reply.
        super().__init__(connection_pool_size=connections, pool_timeout=30.0, **kwargs)
        self._slots = asyncio.Semaphore(connections)

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        async with self._slots:
            return await super().do_request(*args, **kwargs)
