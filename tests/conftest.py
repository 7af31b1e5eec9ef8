"""Shared fixtures: the trained tiny models, built once per test session."""

from __future__ import annotations

import os

import pytest

# No test may reach a model hub: everything they load is built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory):
    """The folders of the models trained to tiny_models' captions and answers (TinyModels)."""
    from tests.tiny_models import build_trained_models

    return build_trained_models(tmp_path_factory.mktemp("models"))


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
