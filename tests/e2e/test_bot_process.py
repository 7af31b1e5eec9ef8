"""``python -m bot`` as a person runs it: a real process, its settings, its logs, its exits."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp

from bot.__main__ import configure_logging
from bot.settings import BotSettings, load_settings
from captioning import EngineSettings
from tests.support import pictures
from tests.support.fake_telegram import FakeTelegram
from tests.support.processes import bot_env, describing_env
from tests.support.waiting import journaled

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A port nothing listens on (bound and released: connecting to it is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_bot(env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot"], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


async def test_a_bot_process_keeps_no_picture_on_disk_and_no_token_in_its_logs(
    telegram, tiny_model_dirs, tmp_path, bot_processes
):
    """Two privacy stories, one process (each start costs seconds): the state and temp folders
    never hold a picture, whatever its format and whatever was done with it; and the token
    reaches the logging path for real (a Telegram error whose text carries the file URL, which
    carries the token, retried; DEBUG logging throughout) but never the logs."""
    env = bot_env(telegram, tiny_model_dirs, tmp_path, LOG_LEVEL="DEBUG")
    process = await bot_processes(env)
    await process.until_ready(telegram)
    sent = {
        "jpeg": pictures.jpeg("green"),
        "png": pictures.opaque_rgba_png("blue"),
        "webp": pictures.webp("yellow"),
        "gif": pictures.two_frame_gif(),
        "heic": pictures.heic("red"),
        "avif": pictures.avif("white"),
    }
    photo = telegram.message(9, photo=telegram.photo(sent["jpeg"]))
    await telegram.push(photo)
    for name in ("png", "webp", "gif", "heic", "avif"):
        await telegram.push(telegram.message(9, document=telegram.document(sent[name], name=f"x.{name}")))
    for data in (sent["jpeg"], sent["png"]):  # an album
        await telegram.push(telegram.message(9, media_group_id="a", photo=telegram.photo(data)))
    replies = await telegram.wait_for("sendMessage", count=7, chat_id=9, timeout=90)
    await telegram.push(telegram.message(9, text="what color is it?", reply_to_message=photo))
    await telegram.press(replies[0], photo, "again", user_id=9)
    await telegram.wait_for("sendMessage", count=8, chat_id=9, timeout=90)
    await telegram.wait_for("answerCallbackQuery", timeout=90)
    await until_said(telegram, 9, "square", 7)  # every picture was described (some after "queued")

    await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
    await telegram.push(telegram.message(6, document=telegram.document(pictures.truncated_jpeg())))
    telegram.fail_next["sendMessage"] = [FakeTelegram.blocked()]  # and a blocked user
    await telegram.push(telegram.message(7, photo=telegram.photo(pictures.jpeg("blue"))))
    [reply] = await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
    await telegram.wait_for("sendMessage", chat_id=6, timeout=60)
    await telegram.wait_for("sendMessage", chat_id=7, timeout=60)
    telegram.redirect_downloads = True  # a download that loops: aiohttp names the URL in its error
    await telegram.push(telegram.message(8, photo=telegram.photo(pictures.jpeg("green"))))
    await process.wait_for_line("TooManyRedirects")
    logs = await process.stop()

    assert "A red square." in reply["text"] and "Un cuadrado rojo." in reply["text"]
    assert process.returncode == 0, logs
    assert "is ready" in logs and "DEBUG" in logs  # it did log, and verbosely
    assert "<token>" in logs  # the token came by, and was masked
    assert telegram.token not in logs
    assert telegram.token.split(":")[1] not in logs
    files = [p for folder in (tmp_path / "state", tmp_path / "tmp") for p in folder.rglob("*") if p.is_file()]
    assert files  # the database is there, and was searched
    for path in files:
        content = path.read_bytes()
        for name, data in sent.items():
            assert data[:24] not in content, (path, name)
            assert data[len(data) // 2 : len(data) // 2 + 64] not in content, (path, name)


def test_a_traceback_that_names_the_token_is_masked(monkeypatch):
    settings = BotSettings(_env_file=None, telegram_bot_token="123:SECRET-in-a-traceback")  # type: ignore[call-arg]
    stream = io.StringIO()
    configure_logging(settings)
    handler = logging.getLogger().handlers[0]
    monkeypatch.setattr(handler, "stream", stream)
    try:
        raise ConnectionError("failed: https://api.telegram.org/bot123:SECRET-in-a-traceback/getMe")
    except ConnectionError:
        logging.getLogger("bot.test").exception("update 1: unexpected error")
    logging.getLogger("bot.test").warning("url %s", "https://api.telegram.org/bot123:SECRET-in-a-traceback/x")
    text = stream.getvalue()
    assert "Traceback" in text and "ConnectionError" in text
    assert "SECRET-in-a-traceback" not in text and text.count("<token>") == 3


async def until_said(
    telegram: FakeTelegram, chat_id: int, words: str, count: int, timeout: float = 90
) -> None:
    """Until ``count`` of the bot's messages in the chat (sent, or edited into place) say ``words``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        final: dict[int, str] = {}
        for call in telegram.calls:
            if (
                call.method in ("sendMessage", "editMessageText")
                and int(call.params.get("chat_id", 0)) == chat_id
            ):
                key = call.params.get("message_id") or id(call.params)
                final[key] = call.params["text"]
        said = sum(words in text for text in final.values())
        if said >= count:
            return
        assert asyncio.get_running_loop().time() < deadline, list(final.values())
        await asyncio.sleep(0.05)


def test_every_setting_is_in_dot_env_example():
    text = (ROOT / ".env.example").read_text()
    names = {line.lstrip("# ").split("=")[0] for line in text.splitlines() if "=" in line}
    for field in (*BotSettings.model_fields, *EngineSettings.model_fields):
        assert field.upper() in names, field


def test_a_missing_token_is_one_clear_line_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    result = run_bot(env, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: TELEGRAM_BOT_TOKEN is not set. Get a token from @BotFather and put it in the "
        "environment or in .env."
    ]


def test_the_token_can_come_from_a_dot_env_file(tmp_path):
    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=1:abc\nDEVICE=gpu\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_") and k != "DEVICE"}
    result = run_bot(env, tmp_path)
    # The token was found (no complaint about it); the bad DEVICE from .env is named instead.
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" not in result.stderr and "DEVICE='gpu'" in result.stderr


def shipped_env_file(folder: Path) -> Path:
    """.env.example exactly as shipped, copied as the README says, with a token added."""
    text = (ROOT / ".env.example").read_text()
    assert "\nTELEGRAM_BOT_TOKEN=\n" in text
    path = folder / ".env"
    path.write_text(text.replace("\nTELEGRAM_BOT_TOKEN=\n", "\nTELEGRAM_BOT_TOKEN=123456:from-dot-env\n"))
    return path


def test_dot_env_example_as_shipped_is_valid_settings(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.upper() in {f.upper() for f in (*BotSettings.model_fields, *EngineSettings.model_fields)}:
            monkeypatch.delenv(name)
    bot, engine = load_settings(shipped_env_file(tmp_path))
    assert bot.token == "123456:from-dot-env"
    assert bot.metrics_port is None and bot.webhook_url is None and bot.webhook_listen == "127.0.0.1"
    assert engine == EngineSettings.from_env({})  # every engine line is its default
    assert engine.translators["es"].name == "Helsinki-NLP/opus-mt-en-es"


async def post_update(url: str, body: bytes, secret: str) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as response:
        return response.status


async def test_a_bot_set_up_from_dot_env_example_takes_webhooks_checked_and_journaled_before_answering(
    telegram, tiny_model_dirs, tmp_path, bot_processes
):
    """.env.example as shipped, copied as the README says, and webhook mode on top: its
    size and secret checked, and every update written down before Telegram hears 200. (Its
    polling, the example's default, is every other bot process's: tests/e2e/test_crashes.py.)"""
    shipped_env_file(tmp_path)
    # The environment wins over .env: point the bot at the stand-in and at the tiny models.
    webhook = {
        "WEBHOOK_URL": "https://bot.example.org/telegram-hook",
        "WEBHOOK_PORT": "0",
        "WEBHOOK_SECRET": "s3cret-value",
    }
    env = {
        k: v
        for k, v in describing_env(telegram, tiny_model_dirs, tmp_path, **webhook).items()
        if k not in ("TELEGRAM_BOT_TOKEN", "STATE_DIR")
    }
    telegram.token = "123456:from-dot-env"
    process = await bot_processes(env)
    [registered] = await process.until_ready(telegram, "setWebhook")
    assert registered["url"] == "https://bot.example.org/telegram-hook"
    assert registered["secret_token"] == "s3cret-value"
    port = int((await process.wait_for_line(r"updates on 127\.0\.0\.1:(\d+)/telegram-hook")).group(1))
    assert telegram.sent("getUpdates") == []  # no polling in webhook mode
    url = f"http://127.0.0.1:{port}/telegram-hook"
    update = {"update_id": 1, "message": telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))}
    body = json.dumps(update).encode()
    assert await post_update(url, body, "wrong") == 403
    assert await post_update(url, b"{" + b" " * (2 * 1024 * 1024) + b"}", "wrong") == 413  # size first
    assert await post_update(url, b"not json", "s3cret-value") == 400
    # Telegram hears 200 only once the update is written down: with the database locked (a
    # backup, the sqlite3 shell), the answer waits for the lock to go.
    database = sqlite3.connect(tmp_path / "state" / "bot.sqlite3", isolation_level=None, timeout=30)
    database.execute("BEGIN EXCLUSIVE")
    posting = asyncio.ensure_future(post_update(url, body, "s3cret-value"))
    await asyncio.sleep(1.5)
    assert not posting.done() and 1 not in journaled(tmp_path / "state")
    database.execute("ROLLBACK")
    database.close()
    assert await posting == 200
    assert 1 in journaled(tmp_path / "state")
    [reply] = await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
    logs = await process.stop()
    assert "A red square." in reply["text"]
    assert telegram.token not in logs and "s3cret-value" not in logs
    assert (tmp_path / "state" / "bot.sqlite3").exists()  # STATE_DIR=state, from .env


async def test_an_unreachable_telegram_is_said_within_seconds_and_retried(
    tmp_path, tiny_model_dirs, bot_processes
):
    telegram = FakeTelegram()  # never started: nothing listens where the bot looks
    port = closed_port()
    env = describing_env(telegram, tiny_model_dirs, tmp_path, TELEGRAM_API_URL=f"http://127.0.0.1:{port}/bot")
    process = await bot_processes(env)
    first = await process.wait_for_line(
        r"Can't reach Telegram at http://127\.0\.0\.1:\d+/bot to connect", timeout=20
    )
    await process.wait_for_line(r"trying again in 2 s", timeout=20)  # once per backoff step
    logs = await process.stop(signal.SIGINT)  # Ctrl-C while connecting
    assert process.returncode == 0, logs
    assert telegram.token not in logs and "trying again in 1 s" in first.string
    assert "Unclosed" not in logs and "Traceback" not in logs


def test_a_rejected_token_is_one_line_and_exit_2(tmp_path, tiny_model_dirs):
    async def scenario() -> subprocess.CompletedProcess[str]:
        telegram = await FakeTelegram(token="999:the-real-one").start()
        try:
            wrong = FakeTelegram(token="123:not-the-token")
            env = describing_env(wrong, tiny_model_dirs, tmp_path, TELEGRAM_API_URL=telegram.api_url)
            return await asyncio.to_thread(run_bot, env, tmp_path)
        finally:
            await telegram.stop()

    result = asyncio.run(scenario())
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather."
    ]


def test_a_caption_model_that_cant_be_loaded_is_one_line_and_exit_2(tmp_path, tiny_model_dirs):
    async def scenario() -> subprocess.CompletedProcess[str]:
        telegram = await FakeTelegram().start()
        try:
            env = bot_env(telegram, tiny_model_dirs, tmp_path, CAPTION_MODEL=str(tmp_path / "nowhere"))
            return await asyncio.to_thread(run_bot, env, tmp_path)
        finally:
            await telegram.stop()

    result = asyncio.run(scenario())
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: The caption model folder {str(tmp_path / 'nowhere')!r} (CAPTION_MODEL) doesn't exist."
    ]
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr
