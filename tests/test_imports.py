"""The Telegram side never imports torch or transformers: the bot can run where the models don't."""

from __future__ import annotations

import subprocess
import sys

BLOCKER = """
import importlib.abc, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "transformers", "torchvision", "ctranslate2"):
            raise ImportError(f"the bot must not import {name}")
        return None

sys.meta_path.insert(0, Blocked())
"""


def test_the_bot_imports_without_torch_or_transformers():
    code = BLOCKER + "\nimport bot, bot.__main__, bot.app, bot.runner\nprint('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_blocker_would_catch_an_import():
    code = BLOCKER + "\nimport captioning.engine"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "must not import torch" in result.stderr
