"""The aiohttp transport under python-telegram-bot: errors become Telegram's error types."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web
from telegram.error import NetworkError, TimedOut

from bot.transport import AiohttpRequest


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_an_unreachable_server_is_a_network_error():
    request = AiohttpRequest()
    await request.initialize()
    try:
        with pytest.raises(NetworkError, match="aiohttp"):
            await request.do_request(f"http://127.0.0.1:{closed_port()}/botX/getMe", "POST")
    finally:
        await request.shutdown()


async def test_a_slow_answer_is_timed_out():
    async def slow(request):
        await asyncio.sleep(2)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/botX/getMe", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    request = AiohttpRequest(read_timeout=0.2, write_timeout=0.1)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.do_request(f"http://127.0.0.1:{port}/botX/getMe", "POST")
        status, body = await request.do_request(
            f"http://127.0.0.1:{port}/botX/getMe", "POST", read_timeout=5.0
        )
        assert status == 200 and b'"ok": true' in body
    finally:
        await request.shutdown()
        await runner.cleanup()
