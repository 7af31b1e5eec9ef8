"""``TRANSLATION_BACKEND=transformers``: MarianMT (opus-mt) through transformers.

:class:`MarianTranslator` owns a Marian tokenizer and model, its generation config, the target
token a multi-target model needs (``>>por<<``), the skipping of empty strings, and the clean-up
of what it generates.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ModelLoadError
from ..text import clean_text

if TYPE_CHECKING:
    from ..settings import EngineSettings, ModelRef

__all__ = ["MarianTranslator"]


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
        device: Any,
        dtype: Any,
        *,
        role: str,
        setting: str,
        shared: dict[str, Any],
    ) -> MarianTranslator:
        """The model ``ref`` names, loaded once per ``shared`` (a multi-target model serves each
        of its languages), with ``ref``'s target token."""
        from transformers import MarianMTModel, MarianTokenizer

        from ..models.loading import load_model, load_pretrained

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
