"""Shared fixtures: the trained tiny models, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may reach a model hub: everything they load is built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory):
    """The folders of the models trained to tiny_models' captions and answers (TinyModels).

    Built once per test session. A developer running the tests again and again may set
    TINY_MODELS_CACHE to a folder: the models are then kept there, keyed by the code that
    builds them, and reused while that code is unchanged.
    """
    from tests.tiny_models import cached_models

    cache = os.environ.get("TINY_MODELS_CACHE")
    return cached_models(Path(cache) if cache else tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def engine_settings(tiny_model_dirs):
    from captioning import EngineSettings

    return EngineSettings.from_env({**tiny_model_dirs.env(), "DEVICE": "cpu"})


@pytest.fixture(scope="session")
def engine(engine_settings):
    from captioning import Engine

    return Engine.load(engine_settings)


@pytest.fixture
async def telegram():
    """A Bot API stand-in on 127.0.0.1 (tests.fake_telegram), fresh for each test."""
    from tests.fake_telegram import FakeTelegram

    server = await FakeTelegram().start()
    yield server
    await server.stop()


@pytest.fixture
async def executor(engine):
    """The real executor over the tiny trained engine."""
    from tests.bot_harness import started_executor

    executor = await started_executor(engine)
    yield executor
    await executor.stop()


@pytest.fixture
async def bot_processes(tmp_path):
    """Starts ``python -m bot`` processes (``await start(env)``); whatever a test leaves
    running, even after a failed assertion, is killed when it ends."""
    from tests.processes import BotProcess

    started: list[BotProcess] = []

    async def start(env: dict[str, str], *args: str) -> BotProcess:
        process = await BotProcess.start(env, tmp_path, *args)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
        await process.process.wait()
