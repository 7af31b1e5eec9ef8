"""Translators keyed by language: English captions out to each language, questions in to English.

A :class:`Translator` maps N texts to N texts in one batched pass. :class:`MarianTranslator`
owns a MarianMT tokenizer and model, its generation config, the target token a multi-target
model needs (``>>por<<``), the skipping of empty strings, and the clean-up of what it
generates. Another backend is one class behind the same protocol (``translation_ct2.py``);
:func:`load_translators` picks one by ``TRANSLATION_BACKEND``, and loads each model once, even
when it serves several languages.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ModelLoadError
from .settings import EngineSettings, ModelRef

if TYPE_CHECKING:
    import torch

__all__ = ["MarianTranslator", "Translator", "clean_text", "load_translators", "translation_pieces"]

log = logging.getLogger(__name__)


class Translator(Protocol):
    """N texts in, N texts out, in one batched pass; empty texts stay empty."""

    def translate(self, texts: Sequence[str]) -> list[str]: ...


def clean_text(text: str) -> str:
    """Generated text -> one tidy line: no stray whitespace or line breaks."""
    return re.sub(r"\s+", " ", text).strip()


# Where a sentence ends: . ! ? or … followed by a space.
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+")


# A line at least this long that doesn't end a sentence is prose wrapped onto the next line
# (a letter, a page); shorter lines are a list's (a menu, a timetable) and stay lines.
WRAPPED_LINE_CHARS = 40
_ENDS_SENTENCE = tuple(".!?:;\u2026")


def text_lines(text: str) -> list[str]:
    """A text read in a picture -> the lines to translate: its lines, with those of wrapped
    prose joined back into one, so each sentence is translated whole, not in fragments.
    A list's short lines, and blank lines, are kept as they are."""
    lines: list[str] = []
    runs_on = False  # the last line read is prose that goes on in the next one
    for line in text.split("\n"):
        stripped = line.strip()
        if runs_on and stripped:
            lines[-1] = f"{lines[-1].rstrip()} {stripped}"
        else:
            lines.append(line)
        runs_on = len(stripped) >= WRAPPED_LINE_CHARS and not stripped.endswith(_ENDS_SENTENCE)
    return lines


def translation_pieces(line: str, max_chars: int) -> list[str]:
    """One line of text -> the pieces to translate it in, each at most ``max_chars`` long.

    A line that fits is one piece; a longer one is cut into its sentences, and a sentence still
    too long between words (a word longer than ``max_chars`` at ``max_chars``). A blank line has
    no pieces.
    """
    line = " ".join(line.split())
    if len(line) <= max_chars:
        return [line] if line else []
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(line):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars + 1)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut].rstrip())
            sentence = sentence[cut:].lstrip()
        if sentence:
            pieces.append(sentence)
    return pieces


class MarianTranslator:
    """A MarianMT model (opus-mt) with its tokenizer, on one device."""

    def __init__(
        self,
        tokenizer: Any,
        model: Any,
        *,
        max_new_tokens: int,
        num_beams: int,
        target_token: str | None = None,
    ) -> None:
        self.tokenizer, self.model, self.target_token = tokenizer, model, target_token
        # The checkpoint's own generation config (generation_config.json), with the settings on top.
        self.generation = copy.deepcopy(model.generation_config)
        self.generation.update(max_new_tokens=max_new_tokens, num_beams=num_beams)

    @classmethod
    def load(
        cls,
        ref: ModelRef,
        settings: EngineSettings,
        device: torch.device,
        dtype: torch.dtype,
        *,
        role: str,
        setting: str,
        shared: dict[str, Any] | None = None,
    ) -> MarianTranslator:
        """The model ``ref`` names, loaded once per ``shared`` (a multi-target model serves each
        of its languages), with ``ref``'s target token."""
        from transformers import MarianMTModel, MarianTokenizer

        from .models import load_model, load_pretrained

        shared = {} if shared is None else shared
        if ref.name not in shared:
            tokenizer = load_pretrained(MarianTokenizer, ref.name, role=role, setting=setting)
            model = load_model(MarianMTModel, ref.name, settings, device, dtype, role=role, setting=setting)
            shared[ref.name] = (tokenizer, model)
        tokenizer, model = shared[ref.name]
        if ref.target_token and ref.target_token not in tokenizer.get_vocab():
            raise ModelLoadError(
                f"{ref.target_token!r} is not a target token of the {role} model {ref.name!r}"
            )
        return cls(
            tokenizer,
            model,
            max_new_tokens=settings.translation_max_new_tokens,
            num_beams=settings.translation_num_beams,
            target_token=ref.target_token,
        )

    def translate(self, texts: Sequence[str]) -> list[str]:
        import torch

        todo = [i for i, text in enumerate(texts) if text]
        out = [""] * len(texts)
        if not todo:
            return out
        # A multi-target model reads its target language from a token that starts the source.
        sources = [f"{self.target_token} {texts[i]}" if self.target_token else texts[i] for i in todo]
        batch = self.tokenizer(sources, return_tensors="pt", padding=True, truncation=True)
        with torch.inference_mode():
            token_ids = self.model.generate(**batch.to(self.model.device), generation_config=self.generation)
        decoded = self.tokenizer.batch_decode(token_ids, skip_special_tokens=True)
        if len(decoded) != len(todo):  # the batch contract: one result per input
            raise RuntimeError(f"batch of {len(todo)} gave {len(decoded)} translations")
        for i, text in zip(todo, decoded, strict=True):
            out[i] = clean_text(text)
        return out


def load_translators(
    refs: Mapping[str, ModelRef],
    settings: EngineSettings,
    device: torch.device,
    dtype: torch.dtype,
    *,
    role: str,
    setting: str,
    on_error: Callable[[str, ModelLoadError], None] | None = None,
) -> dict[str, Translator]:
    """One translator per language code, on ``device``, through ``TRANSLATION_BACKEND``; each
    model loaded once. A model that can't be loaded raises, or with ``on_error`` is reported
    there and its language left out."""
    if settings.translation_backend == "ctranslate2":
        from .translation_ct2 import CTranslate2Translator as backend
    else:
        backend = MarianTranslator
    shared: dict[str, Any] = {}
    translators: dict[str, Translator] = {}
    for code, ref in refs.items():
        try:
            translators[code] = backend.load(
                ref, settings, device, dtype, role=f"{role} ({code})", setting=setting, shared=shared
            )
        except ModelLoadError as exc:
            if on_error is None:
                raise
            on_error(code, exc)
    return translators
