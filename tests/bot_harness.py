"""Runs the real Application against FakeTelegram, in the test's event loop."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from bot.app import build_application
from bot.settings import BotSettings
from captioning import QueueFull
from captioning.executor import Executor
from tests.fake_telegram import FakeTelegram


def bot_settings(telegram: FakeTelegram, state_dir: Path, **extra) -> BotSettings:
    return BotSettings(
        _env_file=None,  # type: ignore[call-arg]
        telegram_bot_token=telegram.token,
        telegram_api_url=telegram.api_url,
        telegram_file_url=telegram.file_url,
        state_dir=state_dir,
        **extra,
    )


@contextlib.asynccontextmanager
async def running_bot(
    telegram: FakeTelegram,
    state_dir: Path,
    describer,
    engine_settings=None,
    *,
    rate_limit: bool = True,
    **settings,
) -> AsyncIterator[object]:
    """initialize, post_init, start polling; on exit the reverse, as run_polling does."""
    application = build_application(
        bot_settings(telegram, state_dir, **settings),
        engine_settings,
        describer=describer,
        rate_limit=rate_limit,
    )
    await application.initialize()
    await application.post_init(application)
    await application.updater.start_polling(poll_interval=0.0, timeout=1)
    await application.start()
    try:
        yield application
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
        await application.post_shutdown(application)


class RecordingDescriber:
    """The real executor, noting what each picture was submitted with (``submitted``); from
    the ``full_after``-th picture on, it refuses them as a full queue does."""

    def __init__(self, inner: Executor, full_after: int | None = None) -> None:
        self.inner, self.full_after = inner, full_after
        self.submitted: list[dict] = []
        self.ready, self.input_size = True, inner.input_size

    def submit(self, picture: bytes, **keys):
        if self.full_after is not None and len(self.submitted) >= self.full_after:
            raise QueueFull("I'm very busy right now; please send the picture again in a minute.")
        self.submitted.append(keys)
        return self.inner.submit(picture, **keys)


async def started_executor(engine) -> Executor:
    executor = Executor(engine_factory=lambda: engine)
    await executor.start()
    return executor
