"""Translators, one family of interchangeable backends: English captions out to each language,
and questions in to English.

    translation/
      __init__.py     the Translator protocol, the backends by name, load_translators
      marian.py       "transformers": MarianMT through transformers
      ctranslate2.py  "ctranslate2": the same Marian models through CTranslate2
      texts.py        Translations: a translator per language, over batches and long texts

A backend is a class with ``load`` (a model loaded once per ``shared``, even when it serves
several languages) and ``translate`` (N texts in, N out, in one batched pass; empty stays
empty). ``TRANSLATION_BACKEND`` names one in :data:`BACKENDS`: a new backend is one module and
one line there. Importing this package imports neither torch nor a backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from importlib import import_module
from typing import TYPE_CHECKING, Any, Protocol

from ..errors import ModelLoadError

if TYPE_CHECKING:
    from ..settings import EngineSettings, ModelRef

__all__ = ["BACKENDS", "Translator", "TranslatorBackend", "backend", "load_translators"]

# TRANSLATION_BACKEND -> "module:class", in this package; loaded only when chosen.
BACKENDS = {
    "transformers": "marian:MarianTranslator",
    "ctranslate2": "ctranslate2:CTranslate2Translator",
}


class Translator(Protocol):
    """N texts in, N texts out, in one batched pass; empty texts stay empty."""

    def translate(self, texts: Sequence[str]) -> list[str]: ...


class TranslatorBackend(Protocol):
    """A translator class: how one is loaded."""

    def load(
        self,
        ref: ModelRef,
        settings: EngineSettings,
        device: Any,
        dtype: Any,
        *,
        role: str,
        setting: str,
        shared: dict[str, Any],
    ) -> Translator: ...


def backend(name: str) -> TranslatorBackend:
    """The translator class that ``TRANSLATION_BACKEND=name`` names."""
    module, _, cls = BACKENDS[name].partition(":")
    found: TranslatorBackend = getattr(import_module(f".{module}", __name__), cls)
    return found


def load_translators(
    refs: Mapping[str, ModelRef],
    settings: EngineSettings,
    device: Any,
    dtype: Any,
    *,
    role: str,
    setting: str,
    on_error: Callable[[str, ModelLoadError], None] | None = None,
) -> dict[str, Translator]:
    """One translator per language code, on ``device``, through ``TRANSLATION_BACKEND``; each
    model loaded once. A model that can't be loaded raises, or with ``on_error`` is reported
    there and its language left out."""
    chosen = backend(settings.translation_backend)
    shared: dict[str, Any] = {}
    translators: dict[str, Translator] = {}
    for code, ref in refs.items():
        try:
            translators[code] = chosen.load(
                ref, settings, device, dtype, role=f"{role} ({code})", setting=setting, shared=shared
            )
        except ModelLoadError as exc:
            if on_error is None:
                raise
            on_error(code, exc)
    return translators
