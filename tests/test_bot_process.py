"""``python -m bot`` as a person runs it: a real process, its settings, its logs."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import aiohttp

from tests import pictures
from tests.fake_telegram import FakeTelegram


def bot_env(telegram: FakeTelegram, tiny_model_dirs, tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEBHOOK_"))}
    env.update(
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_API_URL=telegram.api_url,
        TELEGRAM_FILE_URL=telegram.file_url,
        STATE_DIR=str(tmp_path / "state"),
        **tiny_model_dirs.env(),
        DEVICE="cpu",
        **extra,
    )
    env.pop("LOG_LEVEL", None)  # the default level is the one under test
    return env


async def start_bot(env: dict[str, str], cwd) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def until_ready(
    telegram: FakeTelegram, process: asyncio.subprocess.Process, method: str = "getUpdates"
):
    """Wait for the bot's first ``method`` call; fail at once, with its output, if it dies."""
    waiting = asyncio.ensure_future(telegram.wait_for(method, timeout=120))
    died = asyncio.ensure_future(process.wait())
    done, _ = await asyncio.wait({waiting, died}, return_when=asyncio.FIRST_COMPLETED)
    if waiting not in done:
        waiting.cancel()
        output = (await process.stdout.read()).decode()
        raise AssertionError(f"the bot exited with {process.returncode}:\n{output}")
    died.cancel()
    return waiting.result()


async def stop_bot(process: asyncio.subprocess.Process) -> str:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return output.decode()


async def test_the_bot_process_replies_and_never_logs_its_token(telegram, tiny_model_dirs, tmp_path):
    process = await start_bot(bot_env(telegram, tiny_model_dirs, tmp_path), tmp_path)
    try:
        await until_ready(telegram, process)
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
        await telegram.push(telegram.message(6, document=telegram.document(pictures.truncated_jpeg())))
        telegram.fail_next["sendMessage"] = [FakeTelegram.blocked()]  # and a blocked user
        await telegram.push(telegram.message(7, photo=telegram.photo(pictures.jpeg("blue"))))
        [reply] = await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
        await telegram.wait_for("sendMessage", chat_id=6, timeout=60)
        await telegram.wait_for("sendMessage", chat_id=7, timeout=60)
    finally:
        logs = await stop_bot(process)
    assert "A red square." in reply["text"] and "Un cuadrado rojo." in reply["text"]
    assert process.returncode == 0, logs
    assert "is ready" in logs  # it did log, at its default level
    assert telegram.token not in logs
    assert telegram.token.split(":")[1] not in logs


async def test_the_state_folder_holds_no_pictures(telegram, tiny_model_dirs, tmp_path):
    process = await start_bot(bot_env(telegram, tiny_model_dirs, tmp_path), tmp_path)
    try:
        await until_ready(telegram, process)
        data = pictures.jpeg("green")
        await telegram.push(telegram.message(5, photo=telegram.photo(data)))
        await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
    finally:
        await stop_bot(process)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert data[:64] not in path.read_bytes(), path


def test_a_missing_token_is_one_clear_line_and_exit_2(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: TELEGRAM_BOT_TOKEN is not set. Get a token from @BotFather and put it in the "
        "environment or in .env."
    ]


def test_the_token_can_come_from_a_dot_env_file(tmp_path):
    import subprocess

    (tmp_path / ".env").write_text("TELEGRAM_BOT_TOKEN=1:abc\nDEVICE=gpu\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_") and k != "DEVICE"}
    result = subprocess.run(
        [sys.executable, "-m", "bot"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    # The token was found (no complaint about it); the bad DEVICE from .env is named instead.
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN" not in result.stderr and "DEVICE='gpu'" in result.stderr


async def post_update(url: str, update: dict, secret: str) -> int:
    """POST an update as Telegram does; like Telegram, retry while the server is coming up."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                async with session.post(url, json=update, headers=headers) as response:
                    return response.status
            except aiohttp.ClientConnectorError:
                await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listens at {url}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_mode_checks_the_secret_and_replies(telegram, tiny_model_dirs, tmp_path):
    port = free_port()
    env = bot_env(
        telegram,
        tiny_model_dirs,
        tmp_path,
        WEBHOOK_URL=f"http://127.0.0.1:{port}/telegram-hook",
        WEBHOOK_LISTEN="127.0.0.1",
        WEBHOOK_PORT=str(port),
        WEBHOOK_SECRET="s3cret-value",
    )
    process = await start_bot(env, tmp_path)
    try:
        [registered] = await until_ready(telegram, process, "setWebhook")
        assert registered["url"] == f"http://127.0.0.1:{port}/telegram-hook"
        assert registered["secret_token"] == "s3cret-value"
        assert telegram.sent("getUpdates") == []  # no polling in webhook mode
        update = {"update_id": 1, "message": telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))}
        url = registered["url"]
        assert await post_update(url, update, "wrong") == 403
        assert await post_update(url, update, "s3cret-value") == 200
        [reply] = await telegram.wait_for("sendMessage", chat_id=5, timeout=60)
        assert "A red square." in reply["text"]
    finally:
        logs = await stop_bot(process)
    assert telegram.token not in logs and "s3cret-value" not in logs
