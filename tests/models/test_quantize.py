"""int8 on the CPU: the same words as float32 from every model, batched as before, in int8 layers;
quantized once, then loaded from the cache."""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import Blip2ForConditionalGeneration, MarianMTModel

from captioning import Engine, EngineSettings, Question, SettingsError
from captioning.__main__ import main
from captioning.int8 import UNUSED_DAYS, cache_entry, load_int8
from captioning.int8.format import _in_order
from captioning.int8.tensors import Safetensors
from captioning.models.loading import load_pretrained
from tests.support import pictures
from tests.support.tiny_models import COLORS, square
from tests.support.tiny_reader import SIGNS, sign

# One worker runs them all: the int8 engines are the module's, made once.
pytestmark = pytest.mark.xdist_group("int8")


@pytest.fixture(scope="module")
def both(tiny_model_dirs) -> dict[str, Engine]:
    # Quantized afresh (no cache): what a cached model must equal.
    env = {**tiny_model_dirs.env(more_languages=True), "DEVICE": "cpu", "QUANTIZED_CACHE_DIR": "off"}
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
        "caption": engine.routes["describe"].model,
        "translation": engine.translations.translators["es"].model,
        "question": engine.questions.translators["es"].model,
        "reading": engine.routes["read"].model,
    }
    for name, model in models.items():
        int8, left = quantized(model)
        assert int8 > 0 and left == 0, (name, int8, left)
    assert quantized(both["none"].routes["describe"].model)[0] == 0


def test_int8_on_a_gpu_is_one_clear_line(engine_settings):
    with pytest.raises(SettingsError, match="QUANTIZE=int8 runs on the CPU only") as caught:
        Engine.load(engine_settings.with_overrides(quantize="int8", device="cuda"))
    assert "\n" not in str(caught.value)
    with pytest.raises(SettingsError, match="DTYPE=float32"):
        Engine.load(engine_settings.with_overrides(quantize="int8", dtype="bfloat16"))


def test_the_cli_takes_quantize_and_refuses_it_on_a_gpu(
    tmp_path, tiny_model_dirs, monkeypatch, capsys, caplog
):
    (tmp_path / "red.jpg").write_bytes(pictures.jpeg("red"))
    for name, value in {**tiny_model_dirs.env(), "QUANTIZED_CACHE_DIR": str(tmp_path / "int8")}.items():
        monkeypatch.setenv(name, value)
    run = [str(tmp_path / "red.jpg"), "--quantize", "int8"]
    status = main([*run, "--device", "cpu"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "English: a red square" in captured.out
    caplog.clear()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        assert main([*run, "--device", "cuda"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: QUANTIZE=int8 runs on the CPU only; on a GPU, use DTYPE=float16 (the default there)."
    ]
    # And nothing else a person would see: no log line (pytest holds the CLI's log records), no
    # warning.
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [str(w.message) for w in warned] == []


# -- the cache: the first start quantizes and saves, later ones load --------------------------


def said(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name in ("captioning.int8", "captioning.derived") and words in r.getMessage()
    ]


def test_a_second_start_loads_the_int8_models_from_the_cache_and_says_the_same(
    both, tiny_model_dirs, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="captioning")
    env = {
        **tiny_model_dirs.env(more_languages=True),
        "DEVICE": "cpu",
        "QUANTIZE": "int8",
        "QUANTIZED_CACHE_DIR": str(tmp_path / "int8"),
    }
    first = Engine.load(EngineSettings.from_env(env))
    # Caption, en->es, en->fr/pt (one model for both), es->en, reading: five models, five files.
    assert len(said(caplog, "; saved to")) == 5
    assert len(list((tmp_path / "int8").glob("*.safetensors"))) == 5
    caplog.clear()
    second = Engine.load(EngineSettings.from_env(env))
    assert said(caplog, "Quantized") == []
    assert len(said(caplog, "from the cache")) == 5
    assert work(second) == work(first) == work(both["int8"])
    assert quantized(second.routes["describe"].model) == quantized(both["int8"].routes["describe"].model)


def int8_state(model: torch.nn.Module) -> dict[str, torch.Tensor | None]:
    """Every number an int8 model computes with: int8 weights, scales, biases, other tensors."""
    state: dict[str, torch.Tensor | None] = {}
    for name, module in model.named_modules():
        if "quantized" in type(module).__module__ and hasattr(module, "_weight_bias"):
            weight, state[f"{name}.bias"] = module._weight_bias()
            state[f"{name}.int8"] = weight.int_repr()
            state[f"{name}.scales"] = weight.q_per_channel_scales()
            state[f"{name}.zero_points"] = weight.q_per_channel_zero_points()
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    return {**state, **dict(named)}


def same(a: torch.Tensor | None, b: torch.Tensor | None) -> bool:
    return a is b is None or (a is not None and b is not None and a.dtype == b.dtype and torch.equal(a, b))


def test_a_cached_model_is_exactly_the_model_it_was_saved_from(tiny_model_dirs, tmp_path):
    fresh = load_int8(Blip2ForConditionalGeneration, tiny_model_dirs.caption, cache=tmp_path)
    cached = load_int8(Blip2ForConditionalGeneration, tiny_model_dirs.caption, cache=tmp_path)
    assert str(cached) == str(fresh)  # the same layers, int8 where they were
    expected, got = int8_state(fresh), int8_state(cached)
    assert got.keys() == expected.keys()
    assert [name for name in expected if not same(got[name], expected[name])] == []
    # Tied weights are tied again: the same parameters, once each.
    assert [n for n, _ in cached.named_parameters()] == [n for n, _ in fresh.named_parameters()]


def load_translator(folder: Path, cache: Path) -> torch.nn.Module:
    return load_pretrained(
        MarianMTModel,
        str(folder),
        role="translation",
        setting="TRANSLATION_MODELS",
        int8=True,
        int8_cache=cache,
    )


@pytest.mark.parametrize("damage", ["cut short", "garbage"])
def test_a_damaged_cache_file_is_said_in_one_line_and_made_again(damage, tiny_model_dirs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    expected = int8_state(load_translator(tiny_model_dirs.translation, tmp_path))
    (entry,) = tmp_path.glob("*.safetensors")
    data = entry.read_bytes()
    entry.write_bytes(data[: len(data) // 2] if damage == "cut short" else b"\x00" * 64 + data[64:])
    caplog.clear()
    model = load_translator(tiny_model_dirs.translation, tmp_path)
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1 and problems[0].startswith(f"Can't read {entry} (")
    assert problems[0].endswith(f"quantizing {tiny_model_dirs.translation} again.")
    assert len(said(caplog, "; saved to")) == 1
    got = int8_state(model)
    assert [name for name in expected if not same(got[name], expected[name])] == []
    caplog.clear()
    load_translator(tiny_model_dirs.translation, tmp_path)
    assert len(said(caplog, "from the cache")) == 1 and entry.read_bytes() == data


def test_each_model_revision_and_torch_version_has_its_own_cache_file(tiny_model_dirs, tmp_path, caplog):
    def entry(
        name: str | Path, folder: Path, model_class=MarianMTModel, torch_version=torch.__version__
    ) -> Path:
        return cache_entry(tmp_path, model_class, str(name), folder, torch_version=torch_version)

    translation, question = tiny_model_dirs.translation, tiny_model_dirs.question
    key = entry(translation, translation)
    assert key == entry(translation, translation)
    assert key.name.startswith("translation-") and key.suffix == ".safetensors"
    assert key != entry(question, question)
    assert key != entry(translation, translation, torch_version="2.99.0")
    assert key != entry(translation, translation, model_class=Blip2ForConditionalGeneration)
    # A hub model: by its id and the commit of its snapshot in the Hugging Face cache.
    snapshots = tmp_path / "hub" / "models--Helsinki-NLP--opus-mt-en-es" / "snapshots"
    one, two = snapshots / ("1" * 40), snapshots / ("2" * 40)
    one.mkdir(parents=True), two.mkdir()
    hub_id = "Helsinki-NLP/opus-mt-en-es"
    assert entry(hub_id, one) != entry(hub_id, two)
    assert entry(hub_id, one).name.startswith("Helsinki-NLP--opus-mt-en-es-")
    # A folder whose weights are replaced (the same size and header: a fine-tune) gets a new
    # file; the old one goes once it is unused.
    folder = tmp_path / "model"
    shutil.copytree(translation, folder)
    cache = tmp_path / "int8"
    load_translator(folder, cache)
    (old,) = cache.glob("*.safetensors")
    weights = folder / "model.safetensors"
    size, tensors = weights.stat().st_size, load_file(weights)
    tuned = next(name for name, tensor in tensors.items() if tensor.is_floating_point())
    tensors[tuned] = tensors[tuned] + 0.01
    save_file(tensors, weights, metadata={"format": "pt"})
    assert weights.stat().st_size == size
    aged(old, days=UNUSED_DAYS + 1)
    caplog.set_level(logging.INFO, logger="captioning")
    caplog.clear()  # only what the second load says
    load_translator(folder, cache)
    assert len(said(caplog, "; saved to")) == 1
    (new,) = cache.glob("*.safetensors")
    assert new != old and new.name.rsplit("-", 1)[0] == old.name.rsplit("-", 1)[0]


def aged(path: Path, days: float) -> Path:
    """``path``, last used ``days`` ago."""
    when = time.time() - days * 86400
    os.utime(path, (when, when))
    return path


def test_a_shared_cache_keeps_other_installations_files_and_removes_only_unused_ones(
    tiny_model_dirs, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="captioning")
    translation, cache = tiny_model_dirs.translation, tmp_path / "int8"
    entry = cache_entry(cache, MarianMTModel, str(translation), translation)
    prefix = entry.name.rsplit("-", 1)[0]
    cache.mkdir()
    # Another installation (another torch) shares the folder and used its copy yesterday.
    theirs = cache / f"{prefix}-{'a' * 16}.safetensors"
    theirs.write_bytes(b"their int8 model")
    aged(theirs, days=1)
    stale = cache / f"{prefix}-{'b' * 16}.safetensors"
    stale.write_bytes(b"a copy nobody has loaded for weeks")
    aged(stale, days=UNUSED_DAYS + 1)
    # Not ours, however old: only <prefix>-<16 hex digits>.safetensors is.
    others = [cache / f"{prefix}-{'c' * 16}.safetensors.bak", cache / f"{prefix}-mine.safetensors"]
    others.append(cache / f"{prefix}-{'D' * 16}.safetensors")
    for other in others:
        other.write_bytes(b"someone else's")
        aged(other, days=30)
    load_translator(translation, cache)
    assert entry.exists() and theirs.exists() and not stale.exists()
    assert all(other.exists() for other in others)
    assert said(caplog, "Removed") == [f"Removed {stale}: unused for {UNUSED_DAYS} days."]
    # A load marks the file used; the other copy, now unused for weeks, goes.
    aged(entry, days=UNUSED_DAYS + 5), aged(theirs, days=UNUSED_DAYS + 1)
    caplog.clear()
    load_translator(translation, cache)
    assert len(said(caplog, "from the cache")) == 1
    assert time.time() - entry.stat().st_mtime < 600
    assert entry.exists() and not theirs.exists()


def test_two_starts_at_once_quantize_once_and_the_second_loads_the_first_ones_file(
    tiny_model_dirs, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="captioning")
    cache, together = tmp_path / "int8", threading.Barrier(2)

    def start(_: int) -> torch.nn.Module:
        together.wait()
        return load_translator(tiny_model_dirs.translation, cache)

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(start, range(2))
    assert len(said(caplog, "; saved to")) == 1
    assert len(said(caplog, "from the cache")) == 1
    assert sorted(path.suffix for path in cache.iterdir()) == [".lock", ".safetensors"]  # nothing left over
    expected, got = int8_state(first), int8_state(second)
    assert [name for name in expected if not same(got[name], expected[name])] == []


def test_a_cache_that_cant_be_locked_is_one_line_and_the_model_still_loads(tiny_model_dirs, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    translation, cache = tiny_model_dirs.translation, tmp_path / "int8"
    entry = cache_entry(cache, MarianMTModel, str(translation), translation)
    lock = cache / f"{entry.name.rsplit('-', 1)[0]}.lock"
    lock.mkdir(parents=True)  # where the lock file goes, a folder: it can't be opened
    model = load_translator(translation, cache)
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1 and problems[0].startswith(f"Can't lock {lock} (")
    assert problems[0].endswith(f"quantizing {translation} without saving it.")
    assert list(cache.glob("*.safetensors")) == []
    assert quantized(model)[0] > 0


def write_safetensors(path: Path, header: dict, data: bytes, *, length: int | None = None) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


@pytest.mark.parametrize(
    ("damage", "header", "length", "says"),
    [
        (
            "a header of a terabyte",
            {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}},
            2**40,
            "header",
        ),
        (
            "a shape bigger than its bytes",
            {"w": {"dtype": "F32", "shape": [2**40], "data_offsets": [0, 16]}},
            None,
            "bytes",
        ),
        (
            "a shape smaller than its bytes",
            {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}},
            None,
            "bytes",
        ),
        ("offsets backwards", {"w": {"dtype": "F32", "shape": [0], "data_offsets": [16, 0]}}, None, "bytes"),
        ("a negative size", {"w": {"dtype": "F32", "shape": [-4], "data_offsets": [0, 16]}}, None, "shape"),
        (
            "bytes past the end",
            {"w": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]}},
            None,
            "shorter",
        ),
    ],
)
def test_a_damaged_safetensors_file_is_refused_when_opened_before_anything_is_allocated(
    damage, header, length, says, tmp_path
):
    path = write_safetensors(tmp_path / "damaged.safetensors", header, bytes(16), length=length)
    with pytest.raises(ValueError, match=says):
        Safetensors(path, exact=True)


@pytest.mark.parametrize("damage", ["a header of a terabyte", "a shape bigger than its bytes"])
def test_a_cache_file_with_a_damaged_header_is_said_in_one_line_and_made_again(
    damage, tiny_model_dirs, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="captioning")
    load_translator(tiny_model_dirs.translation, tmp_path)
    (entry,) = tmp_path.glob("*.safetensors")
    data = entry.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    if damage == "a header of a terabyte":
        entry.write_bytes(struct.pack("<Q", 2**40) + data[8:])
    else:
        header = json.loads(data[8 : 8 + length])
        name = next(name for name in header if name != "__metadata__")
        header[name]["shape"] = [2**40]
        write_safetensors(entry, header, data[8 + length :])
    caplog.clear()
    load_translator(tiny_model_dirs.translation, tmp_path)
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(problems) == 1 and problems[0].startswith(f"Can't read {entry} (")
    assert len(said(caplog, "; saved to")) == 1


def test_layers_are_packed_a_few_at_a_time_and_put_in_place_in_order():
    taken: list[int] = []

    def pack(layer: int) -> int:
        taken.append(layer)
        return layer * 10

    packed = _in_order(pack, range(8), workers=3)
    assert next(packed) == 0
    assert len(taken) == 3  # the rest wait as they are
    assert list(packed) == [10, 20, 30, 40, 50, 60, 70]
