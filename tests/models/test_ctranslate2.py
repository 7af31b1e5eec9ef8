"""TRANSLATION_BACKEND=ctranslate2: the words transformers gives, and a conversion cache that a
crash or a damaged file can't stop."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch

from captioning import EngineSettings
from captioning.settings import ModelRef
from captioning.translation.ctranslate2 import CTranslate2Translator
from captioning.translation.marian import MarianTranslator
from tests.support.tiny_boundary import FRENCH, PROBES, build_boundary_translator

pytestmark = pytest.mark.xdist_group("ctranslate2")


@pytest.fixture(scope="module")
def boundary(tmp_path_factory) -> str:
    """The en->fr model whose "un carré vert" is ``▁un ▁carré ▁ vert`` (tests.support.tiny_boundary)."""
    return str(build_boundary_translator(tmp_path_factory.mktemp("boundary")))


def translate(backend: type, model: str, cache, texts: list[str], **env: str) -> list[str]:
    settings = EngineSettings.from_env({"DEVICE": "cpu", "CT2_CACHE_DIR": str(cache), **env})
    translator = backend.load(
        ModelRef(model), settings, torch.device("cpu"), torch.float32, role="t", setting="T", shared={}
    )
    return translator.translate(texts)


@pytest.mark.parametrize("compute_type", ["float32", "int8"])
def test_ctranslate2_gives_transformers_words_where_the_word_boundary_is_its_own_piece(
    boundary, compute_type, tmp_path
):
    expected = translate(MarianTranslator, boundary, tmp_path, PROBES)
    assert expected[: len(FRENCH)] == FRENCH  # "un carré vert", with its space
    got = translate(CTranslate2Translator, boundary, tmp_path, PROBES, CT2_COMPUTE_TYPE=compute_type)
    assert got == expected


# -- the conversion cache -------------------------------------------------------------------------


def the_conversion(cache) -> Path:
    (folder,) = [path for path in cache.iterdir() if path.is_dir()]
    return folder


def said(caplog: pytest.LogCaptureFixture, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("captioning") and r.levelno >= level]


@pytest.mark.parametrize(
    "damage", ["model.bin cut short", "model.bin removed", "tokenizer removed", "a file others can write"]
)
def test_a_damaged_conversion_is_said_in_one_line_and_made_again(boundary, damage, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="captioning")
    expected = translate(CTranslate2Translator, boundary, tmp_path, PROBES)
    folder = the_conversion(tmp_path)
    weights = folder / "model.bin"
    if damage == "model.bin cut short":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "model.bin removed":
        weights.unlink()
    elif damage == "a file others can write":
        (folder / "tokenizer" / "vocab.json").chmod(0o666)
    else:
        shutil.rmtree(folder / "tokenizer")
    caplog.clear()
    assert translate(CTranslate2Translator, boundary, tmp_path, PROBES) == expected
    problems = said(caplog, logging.WARNING)
    assert len(problems) == 1 and problems[0].startswith(f"Can't load {folder} (")
    assert problems[0].endswith(f"converting {boundary} again.")
    assert len([line for line in said(caplog) if line.startswith("Converting")]) == 1
    caplog.clear()
    assert translate(CTranslate2Translator, boundary, tmp_path, PROBES) == expected
    assert said(caplog) == []  # loaded as it is now
    assert the_conversion(tmp_path) == folder
    assert all(path.stat().st_mode & 0o022 == 0 for path in [folder, *folder.rglob("*")])


def test_a_conversion_cache_other_users_can_write_is_refused_and_the_model_converted_privately(
    boundary, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="captioning")
    expected = translate(CTranslate2Translator, boundary, tmp_path / "ours", PROBES)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)
    caplog.clear()
    assert translate(CTranslate2Translator, boundary, shared, PROBES) == expected  # loaded, then removed
    assert said(caplog, logging.WARNING) == [
        f"Not using {shared}: other users can write it (mode 777); converting {boundary} without it."
    ]
    assert list(shared.iterdir()) == []
