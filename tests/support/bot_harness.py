"""Runs the real Application, through the real Runner, against FakeTelegram, in the test's loop."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

from bot.app import build_application
from bot.runner import Runner
from bot.settings import BotSettings, Timings
from captioning.serving.executor import Executor
from tests.support.fake_telegram import FakeTelegram

# What the tests wait for: short polls and pauses, so that a test takes seconds. Each test that
# is about a timing passes its own.
FAST = Timings(
    poll_timeout_s=1.0,
    reconnect_delays_s=(0.1, 0.2, 0.5),
    album_quiet_s=0.5,
    # A slow machine must not turn a description into a "queued" reply edited later.
    status_after_s=60.0,
)


def bot_settings(telegram: FakeTelegram, state_dir: Path, **extra) -> BotSettings:
    return BotSettings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=telegram.token,
        telegram_api_url=telegram.api_url,
        telegram_file_url=telegram.file_url,
        state_dir=state_dir,
        **{"shutdown_grace_s": 5.0, **extra},
    )


@contextlib.asynccontextmanager
async def running_bot(
    telegram: FakeTelegram,
    state_dir: Path,
    describer,
    engine_settings=None,
    *,
    rate_limit: bool = True,
    timings: Timings = FAST,
    owned: bool = False,
    **settings,
) -> AsyncIterator[Runner]:
    """The bot as ``python -m bot`` runs it (the same Runner), minus the signal handlers.

    ``owned``: the runner takes ``describer`` (an Executor) as the one it started itself, as
    ``python -m bot`` does: it watches its model thread, and stops it at the end.

    A part that dies calls ``runner.fatal``, which sets ``runner.exit_code`` and asks the bot to
    stop; here the bot stops when the test leaves the block, so a test can look at it first.
    """
    application = build_application(
        bot_settings(telegram, state_dir, **settings),
        engine_settings,
        describer=describer,
        rate_limit=rate_limit,
        timings=timings,
    )
    if owned:
        application.bot_data.owned_executor = describer
    runner = Runner(application)
    try:
        await runner.start()
        yield runner
    finally:
        await runner.stop()


def fetch(url: str) -> tuple[int, str]:
    """GET ``url``: its status and body (an error status too), for /healthz and /metrics."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


async def started_executor(engine) -> Executor:
    executor = Executor(engine_factory=lambda: engine)
    await executor.start()
    return executor
