"""int8 on the CPU: the same words as float32 from every model, batched as before, in int8 layers."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from captioning import Engine, EngineSettings, Question, SettingsError
from tests import pictures
from tests.tiny_models import COLORS, square
from tests.tiny_reader import SIGNS, sign


@pytest.fixture(scope="module")
def both(tiny_model_dirs) -> dict[str, Engine]:
    env = {**tiny_model_dirs.env(more_languages=True), "DEVICE": "cpu"}
    return {q: Engine.load(EngineSettings.from_env({**env, "QUANTIZE": q})) for q in ("none", "int8")}


def work(engine: Engine) -> tuple:
    return (
        engine.describe([square(c) for c in COLORS]),
        engine.describe([square("red"), square("blue")], detailed=True),
        engine.answer(
            [square("red"), square("blue"), square("green")],
            ["what color is it?", Question("¿de qué color es?", "es"), "is it a square?"],
        ),
        engine.read([sign(text) for text in SIGNS]),
    )


def test_int8_gives_the_same_captions_translations_answers_and_text(both):
    assert work(both["int8"]) == work(both["none"])


def test_a_quantized_engine_still_batches(both):
    engine = both["int8"]
    assert (engine.batch_size, both["none"].batch_size) == (4, 8)  # int8 on the CPU gains nothing past 4
    order = ["blue", "red", "yellow", "green", "white", "red"]
    assert engine.describe([square(c) for c in order]) == [engine.describe([square(c)])[0] for c in order]


def quantized(module: torch.nn.Module) -> tuple[int, int]:
    """(int8 Linear layers, float Linear layers) in ``module``."""
    linears = [m for m in module.modules() if "Linear" in type(m).__name__]
    int8 = [m for m in linears if "quantized" in type(m).__module__]
    return len(int8), len(linears) - len(int8)


def test_every_linear_layer_of_every_model_is_int8(both):
    engine = both["int8"]
    models = {
        "caption": engine.captioner,
        "translation": engine.translators["es"].model,
        "question": engine.question_translators["es"].model,
        "reading": engine.reader.model,
    }
    for name, model in models.items():
        int8, left = quantized(model)
        assert int8 > 0 and left == 0, (name, int8, left)
    assert quantized(both["none"].captioner)[0] == 0


def test_int8_on_a_gpu_is_one_clear_line(engine_settings):
    with pytest.raises(SettingsError, match="QUANTIZE=int8 runs on the CPU only") as caught:
        Engine.load(engine_settings.with_overrides(quantize="int8", device="cuda"))
    assert "\n" not in str(caught.value)
    with pytest.raises(SettingsError, match="DTYPE=float32"):
        Engine.load(engine_settings.with_overrides(quantize="int8", dtype="bfloat16"))


def test_the_cli_takes_quantize_and_refuses_it_on_a_gpu(tmp_path, tiny_model_dirs):
    import os

    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    env = {**os.environ, **tiny_model_dirs.env()}
    run = [sys.executable, "-m", "captioning", str(tmp_path / "red.jpg"), "--quantize", "int8"]
    result = subprocess.run([*run, "--device", "cpu"], capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 0, result.stderr
    assert "English: a red square" in result.stdout
    result = subprocess.run([*run, "--device", "cuda"], capture_output=True, text=True, env=env, timeout=240)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: QUANTIZE=int8 runs on the CPU only; on a GPU, use DTYPE=float16 (the default there)."
    ]
