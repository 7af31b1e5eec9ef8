"""Shared fixtures: the trained tiny models, built once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No test may reach a model hub: everything they load is built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(caption folder, translation folder) of models trained to the captions in tiny_models."""
    from tests.tiny_models import build_trained_models

    return build_trained_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def engine_settings(tiny_model_dirs):
    from captioning import EngineSettings

    caption_dir, translation_dir = tiny_model_dirs
    return EngineSettings.from_env(
        {"CAPTION_MODEL": str(caption_dir), "TRANSLATION_MODEL": str(translation_dir), "DEVICE": "cpu"}
    )


@pytest.fixture(scope="session")
def engine(engine_settings):
    from captioning import Engine

    return Engine.load(engine_settings)
