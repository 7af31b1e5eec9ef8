"""TRANSLATION_BACKEND=ctranslate2: the words transformers gives, and a conversion cache that a
crash or a damaged file can't stop."""

from __future__ import annotations

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
