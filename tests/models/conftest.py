"""Fixtures of the model tier's command-line tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def model_env(monkeypatch, tiny_model_dirs) -> dict[str, str]:
    """The tiny models' settings, in this process's environment and for a child's."""
    env = {**tiny_model_dirs.env(), "DEVICE": "cpu"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
