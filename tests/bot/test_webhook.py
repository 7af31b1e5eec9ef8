"""Webhook mode's settings and registration: a setting Telegram would refuse is exit 2 before
anything starts, and /healthz is not "ok" while Telegram hasn't taken the webhook."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from bot.__main__ import main
from tests.support.bot_harness import FAST, fetch, running_bot
from tests.support.fake_telegram import FakeTelegram
from tests.support.waiting import until

WEBHOOK = {"webhook_url": "https://bot.example.org/hook", "webhook_port": 0, "metrics_port": 0}


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("WEBHOOK_URL", "http://bot.example.org/hook", "must be an https:// URL"),
        ("WEBHOOK_URL", "https://bot.example.org:8080/hook", "port 443, 80, 88 or 8443"),
        ("WEBHOOK_URL", "https:///hook", "must be an https:// URL"),
        ("WEBHOOK_SECRET", "not allowed: spaces!", "each A-Z, a-z, 0-9, _ or -"),
        ("WEBHOOK_SECRET", "x" * 257, "1 to 256 characters"),
    ],
)
def test_a_webhook_setting_telegram_would_refuse_is_one_line_and_exit_2(
    monkeypatch, capsys, tmp_path, name, value, words
):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.org/hook")
    monkeypatch.setenv(name, value)
    assert main() == 2
    [line] = capsys.readouterr().err.splitlines()
    assert name in line and words in line
    assert "spaces!" not in line and "x" * 20 not in line  # a secret is never said back


async def test_health_says_so_while_telegram_has_not_taken_the_webhook(telegram, executor, tmp_path):
    telegram.fail_next["setWebhook"] = [FakeTelegram.bad_gateway()] * 2
    timings = dataclasses.replace(FAST, reconnect_delays_s=(1.5,))
    async with running_bot(telegram, tmp_path / "state", executor, timings=timings, **WEBHOOK) as runner:
        health = f"http://127.0.0.1:{runner.health_port}/healthz"
        await until(lambda: telegram.count("setWebhook") >= 1, "a first try")
        status, failing = await asyncio.to_thread(fetch, health)
        await until(lambda: runner.parts()["updates"] is None, "the webhook registered", timeout=10)
        healthy = await asyncio.to_thread(fetch, health)
    assert status == 503
    assert "updates: can't register the webhook with Telegram (NetworkError: Bad Gateway)" in failing
    assert healthy == (200, "updates: ok\nmodels: ok\ndatabase: ok\n")


async def test_a_webhook_telegram_refuses_stops_the_bot_with_exit_2(telegram, executor, tmp_path):
    refusal = {"error_code": 400, "description": "Bad Request: bad webhook: Failed to resolve host"}
    telegram.fail_next["setWebhook"] = [refusal]
    async with running_bot(telegram, tmp_path / "state", executor, **WEBHOOK) as runner:
        await until(lambda: runner.exit_code != 0, "the bot stopping")
    assert runner.exit_code == 2
