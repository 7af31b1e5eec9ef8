"""Telegram through a proxy: TELEGRAM_PROXY (http, https, socks5), or HTTPS_PROXY and NO_PROXY.

Every proxy here is a real one on 127.0.0.1 (tests.support.proxies) that counts what it carries. The
Bot API stand-in sits behind a Front that notes who connected to it, so "nothing went around
the proxy" is checked, not assumed: every connection the stand-in got came from the proxy.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from bot.app import build_application
from bot.runner import Runner
from bot.settings import BotSettings, load_settings
from captioning import SettingsError
from tests.support import pictures
from tests.support.bot_harness import FAST
from tests.support.fake_telegram import FakeTelegram
from tests.support.processes import describing_env
from tests.support.proxies import Front, HttpProxy, Socks5Proxy, closed_port, tls_contexts
from tests.support.waiting import until

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")
PASSWORD = "pr0xy-pa55word"


@pytest.fixture(autouse=True)
def no_proxy_in_the_environment(monkeypatch):
    """The machine's own proxy settings, if any, stay out of these tests."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@contextlib.asynccontextmanager
async def started(*servers):
    try:
        for server in servers:
            await server.start()
        yield servers
    finally:
        for server in reversed(servers):
            await server.stop()


def settings(telegram: FakeTelegram, tmp_path, front: Front | None = None, **extra) -> BotSettings:
    """The bot's settings for the stand-in, reached through ``front`` when given."""
    values = {
        "telegram_bot_token": telegram.token,
        "telegram_api_url": front.url("/bot") if front else telegram.api_url,
        "telegram_file_url": front.url("/file/bot") if front else telegram.file_url,
        "state_dir": tmp_path / "state",
        "shutdown_grace_s": 5.0,
    }
    return BotSettings(_env_file=None, **{**values, **extra})  # type: ignore[call-arg]


@contextlib.asynccontextmanager
async def running(settings: BotSettings, describer) -> AsyncIterator[Runner]:
    """The bot as ``python -m bot`` runs it (tests.support.bot_harness.running_bot, with any URLs)."""
    runner = Runner(build_application(settings, describer=describer, timings=FAST))
    try:
        await runner.start()
        yield runner
    finally:
        await runner.stop()


def carried(proxy: HttpProxy) -> collections.Counter[str]:
    """The Bot API methods (and "download"s) in the plain requests a proxy carried."""
    return collections.Counter(
        "download" if "/file/bot" in line else line.rsplit("/", 1)[-1] for line in proxy.requests
    )


def called(telegram: FakeTelegram) -> collections.Counter[str]:
    return collections.Counter(call.method for call in telegram.calls)


async def describe_a_photo(telegram: FakeTelegram, chat_id: int = 5) -> str:
    await telegram.push(telegram.message(chat_id, photo=telegram.photo(pictures.jpeg("red"))))
    [reply] = await telegram.wait_for("sendMessage", chat_id=chat_id)
    return reply["text"]


def said(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


async def test_telegram_proxy_carries_every_call_and_download(telegram, executor, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with started(Front(to_port=telegram.port), HttpProxy()) as (front, proxy):
        proxy_url = f"http://describe-bot:{PASSWORD}@127.0.0.1:{proxy.port}"
        async with running(settings(telegram, tmp_path, front, telegram_proxy=proxy_url), executor):
            text = await describe_a_photo(telegram)
    assert "A red square." in text
    # Every connection the stand-in got was one the proxy opened, and each call it answered
    # the proxy carried: the long poll that was cut off at the stop aside, the counts agree.
    assert front.peers and set(front.peers) <= proxy.outgoing
    stand_in, through_proxy = called(telegram), carried(proxy)
    assert {"getMe", "getUpdates", "getFile", "download", "sendMessage"} <= set(stand_in)
    assert stand_in - collections.Counter(getUpdates=1) <= through_proxy <= stand_in
    assert proxy.credentials() == {("describe-bot", PASSWORD)}
    logs = said(caplog)
    assert f"Telegram is reached through the proxy http://127.0.0.1:{proxy.port} (TELEGRAM_PROXY)" in logs
    assert PASSWORD not in logs and telegram.token not in logs


@pytest.mark.parametrize("no_proxy", ["", "localhost"])
async def test_without_telegram_proxy_the_environment_decides(
    telegram, executor, tmp_path, monkeypatch, no_proxy
):
    # The stand-in speaks http, so HTTP_PROXY is the variable that applies; HTTPS_PROXY, for
    # Telegram's https, is tested below with a bot process and TLS.
    async with started(Front(to_port=telegram.port), HttpProxy()) as (front, proxy):
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        if no_proxy:
            monkeypatch.setenv("NO_PROXY", no_proxy)
        async with running(settings(telegram, tmp_path, front), executor):
            text = await describe_a_photo(telegram)
    assert "A red square." in text
    if no_proxy:  # NO_PROXY names the stand-in's host: straight there
        assert proxy.requests == [] and front.peers
    else:
        assert set(front.peers) <= proxy.outgoing and "sendMessage" in carried(proxy)


async def test_a_socks5_proxy_carries_the_bot_and_looks_names_up_itself(telegram, executor, tmp_path):
    socks = Socks5Proxy(user="describe-bot", password=PASSWORD)
    async with (
        started(Front(to_port=telegram.port), socks) as (front, socks),
        running(settings(telegram, tmp_path, front, telegram_proxy=socks.url), executor),
    ):
        text = await describe_a_photo(telegram)
    assert "A red square." in text
    assert front.peers and set(front.peers) <= socks.outgoing
    # The name went to the proxy as it was: where Telegram's DNS is blocked, the proxy's works.
    assert set(socks.targets) == {f"localhost:{front.port}"}


async def trying(telegram: FakeTelegram, tmp_path, caplog, lines: int, **extra) -> list[str]:
    """Start the bot and let it try to connect until it has said ``lines`` warnings; stop it
    as SIGTERM does; its WARNING and ERROR lines."""
    caplog.set_level(logging.INFO)
    runner = Runner(
        build_application(settings(telegram, tmp_path, **extra), describer=object(), timings=FAST)
    )
    starting = asyncio.create_task(runner.start())

    def warnings() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.levelno >= logging.WARNING]

    try:
        await until(lambda: len(warnings()) >= lines or starting.done(), f"{lines} warnings")
        assert not starting.done(), said(caplog)
    finally:
        runner.request_stop()
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        await runner.stop()
    for record in warnings():
        assert record.exc_info is None and "\n" not in record.getMessage(), record.getMessage()
    return [r.getMessage() for r in warnings()]


async def test_a_proxy_that_cant_be_reached_is_one_line_per_try(telegram, tmp_path, caplog):
    port = closed_port()
    lines = await trying(
        telegram, tmp_path, caplog, 3, telegram_proxy=f"http://describe-bot:{PASSWORD}@127.0.0.1:{port}"
    )
    assert len(lines) >= 3
    for line in lines:
        assert line.startswith(f"Can't reach Telegram at {telegram.api_url} to connect"), line
        assert f"the proxy at 127.0.0.1:{port} can't be reached (Connect call failed" in line, line
        assert PASSWORD not in line and telegram.token not in line
    assert telegram.calls == []


async def test_a_proxy_that_refuses_is_one_line_per_try(telegram, tmp_path, caplog):
    # Telegram is https: a proxy is asked to CONNECT, and this one answers 407 every time.
    async with started(HttpProxy(refuse=407)) as (proxy,):
        proxy_url = f"http://describe-bot:{PASSWORD}@127.0.0.1:{proxy.port}"
        api = "https://api.telegram.org"
        lines = await trying(
            telegram,
            tmp_path,
            caplog,
            3,
            telegram_api_url=f"{api}/bot",
            telegram_file_url=f"{api}/file/bot",
            telegram_proxy=proxy_url,
        )
    # One line per try: as many as the CONNECTs the proxy refused (the last maybe cut short).
    assert len(proxy.requests) - 1 <= len(lines) <= len(proxy.requests)
    assert set(proxy.requests) == {"CONNECT api.telegram.org:443"}
    for line in lines:
        assert f"the proxy http://127.0.0.1:{proxy.port} refused: 407 Proxy Authentication Required" in line
        assert PASSWORD not in line and telegram.token not in line
    assert proxy.credentials() == {("describe-bot", PASSWORD)}


@pytest.mark.parametrize(
    "value",
    [
        f"ftp://describe-bot:{PASSWORD}@proxy.example:21",
        f"http://describe-bot:{PASSWORD}@proxy.example",  # no port
        "proxy.example:3128",  # no scheme
        f"socks4://describe-bot:{PASSWORD}@proxy.example:1080",
    ],
)
def test_a_telegram_proxy_that_isnt_a_proxy_url_is_one_line_without_its_password(
    tmp_path, monkeypatch, value
):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    monkeypatch.setenv("TELEGRAM_PROXY", value)
    with pytest.raises(SettingsError) as raised:
        load_settings(tmp_path / "no.env")
    assert str(raised.value) == (
        "Invalid setting TELEGRAM_PROXY: must be an http://, https:// or socks5:// URL with a host "
        "and a port, such as http://proxy.example:3128"
    )


def test_a_proxy_url_is_kept_secret_in_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    monkeypatch.setenv("TELEGRAM_PROXY", f"socks5://describe-bot:{PASSWORD}@proxy.example:1080")
    settings, _ = load_settings(tmp_path / "no.env")
    assert settings.proxy == f"socks5://describe-bot:{PASSWORD}@proxy.example:1080"
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings)


# -- a bot process, over TLS, as it reaches the real Telegram ------------------------------------


@pytest.mark.parametrize("how", ["HTTPS_PROXY", "TELEGRAM_PROXY over TLS"])
async def test_a_bot_process_reaches_https_telegram_through_a_proxy(
    telegram, tiny_model_dirs, tmp_path, bot_processes, how
):
    """HTTPS_PROXY: an http proxy tunnels (CONNECT) to a Bot API over TLS, as it does for
    api.telegram.org. TELEGRAM_PROXY=https://...: the proxy is spoken to over TLS too, and it
    wins over HTTPS_PROXY (a dead one here) and NO_PROXY."""
    server_tls, ca_file = tls_contexts(tmp_path)
    front = Front(to_port=telegram.port, tls=server_tls)
    proxy = HttpProxy(tls=server_tls if how != "HTTPS_PROXY" else None)
    async with started(front, proxy):
        extra = {
            "TELEGRAM_API_URL": front.url("/bot"),
            "TELEGRAM_FILE_URL": front.url("/file/bot"),
            "SSL_CERT_FILE": str(ca_file),  # the stand-in's certificate, and the proxy's
        }
        if how == "HTTPS_PROXY":
            extra["HTTPS_PROXY"] = proxy.url
        else:
            extra["TELEGRAM_PROXY"] = proxy.url.replace("://", f"://describe-bot:{PASSWORD}@")
            extra["HTTPS_PROXY"] = f"http://127.0.0.1:{closed_port()}"
            extra["NO_PROXY"] = "localhost,127.0.0.1"
        process = await bot_processes(describing_env(telegram, tiny_model_dirs, tmp_path, **extra))
        await process.until_ready(telegram)
        text = await describe_a_photo(telegram)
        logs = await process.stop()
    assert "A red square." in text
    assert process.returncode == 0, logs
    assert front.peers and set(front.peers) <= proxy.outgoing
    assert set(proxy.requests) == {f"CONNECT localhost:{front.port}"}
    assert telegram.token not in logs and PASSWORD not in logs
    if how != "HTTPS_PROXY":
        assert proxy.credentials() == {("describe-bot", PASSWORD)}
    assert "Traceback" not in logs and "Can't reach" not in logs, logs
