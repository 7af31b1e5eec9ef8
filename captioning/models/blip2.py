"""BLIP-2 (``Salesforce/blip2-opt-2.7b``, the default CAPTION_MODEL): a short caption, a
detailed one, and answers to questions about the picture.

Three generation settings, one per kind of pass: a caption (greedy and short: alt text is read
aloud), a detailed caption ("More detail": beam search, room for more words; only where no
other model writes a long description: Florence-2 does, where it is loaded), and an answer
(greedy and short, like the VQA answers BLIP-2 was tuned on). BLIP-2 must be handed its
generation config: it passes generation on to its inner language model, which would otherwise
use bare defaults.

A question goes in as BLIP-2's model card puts it (``Question: ... Answer:``), after the
picture's query tokens and BOS, padded on the left so that every row's answer starts at the
same column; what comes back is the prompt and then the answer, and only the answer is kept.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from PIL import Image
from transformers import Blip2ForConditionalGeneration, Blip2Processor, GenerationConfig

from ..questions import prompt
from ..settings import EngineSettings
from ..text import clean_text
from .base import size_of
from .loading import load_model, load_pretrained

__all__ = ["ADAPTERS", "MAX_QUESTION_TOKENS", "Blip2"]

# Tokens of a question that BLIP-2 is shown; MAX_QUESTION_CHARS keeps real ones well below.
MAX_QUESTION_TOKENS = 96


class Blip2:
    """A BLIP-2 processor and model on one device."""

    family: ClassVar[str] = "BLIP-2 (blip-2)"
    roles: ClassVar[tuple[str, ...]] = ("caption",)
    # Its detailed caption is one sentence too: Florence-2's paragraph, where it is loaded
    # (OCR_MODEL, OCR_DETAILED_TASK), is the long description instead.
    fallbacks: tuple[str, ...] = ("describe_detailed",)
    languages: tuple[str, ...] = ()  # English only

    def __init__(
        self, processor: Blip2Processor, model: Blip2ForConditionalGeneration, settings: EngineSettings
    ):
        self.processor = processor
        self.model: Any = model  # transformers' generate() types are narrower than what it takes
        self.device, self.dtype = model.device, model.dtype
        # BLIP-2 looks at a square of this many pixels a side (224 for the hub models).
        self.input_size = size_of(processor, 224)
        base = model.generation_config
        self.generation = {
            "describe": _generation(base, settings.caption_max_new_tokens, settings.caption_num_beams),
            "describe_detailed": _generation(
                base, settings.detailed_max_new_tokens, settings.detailed_num_beams
            ),
            "answer": _generation(base, settings.answer_max_new_tokens, settings.answer_num_beams),
        }
        self.kinds = tuple(self.generation)

    @classmethod
    def supports(cls, config: Mapping[str, Any]) -> bool:
        return config.get("model_type") == "blip-2"

    @classmethod
    def load(
        cls,
        name: str,
        folder: str,
        settings: EngineSettings,
        device: torch.device,
        dtype: torch.dtype,
        *,
        role: str,
        setting: str,
    ) -> Blip2:
        processor = load_pretrained(Blip2Processor, name, role=role, setting=setting)
        model = load_model(
            Blip2ForConditionalGeneration, name, settings, device, dtype, role=role, setting=setting
        )
        return cls(processor, model, settings)

    def prepare(self, picture: Image.Image) -> torch.Tensor:
        return self.processor.image_processor(picture, return_tensors="pt")["pixel_values"][0]

    def run(
        self, kind: str, pixels: Sequence[torch.Tensor], tasks: Sequence[Any], language: str = "en"
    ) -> list[str]:
        if kind == "answer":
            return self.ask(pixels, [task.question.text for task in tasks])
        return self.caption(pixels, kind)

    def caption(self, pixels: Sequence[torch.Tensor], kind: str = "describe") -> list[str]:
        """One ``generate`` over the batch -> an English caption per picture."""
        with torch.inference_mode():
            token_ids = self.model.generate(
                pixel_values=self._stacked(pixels), generation_config=self.generation[kind]
            )
        return [clean_text(t) for t in self.processor.batch_decode(token_ids, skip_special_tokens=True)]

    def ask(self, pixels: Sequence[torch.Tensor], questions: Sequence[str]) -> list[str]:
        """One ``generate`` over the batch -> an English answer per (picture, English question)."""
        config, tokenizer = self.model.config, self.processor.tokenizer
        head = [config.image_token_index] * config.num_query_tokens + [config.text_config.bos_token_id]
        rows = [
            head + tokenizer(prompt(q), add_special_tokens=False).input_ids[-MAX_QUESTION_TOKENS:]
            for q in questions
        ]
        width = max(map(len, rows))
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        attention = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        with torch.inference_mode():
            token_ids = self.model.generate(
                pixel_values=self._stacked(pixels),
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=self.generation["answer"],
            )
        # The language model returns the prompt and then the answer: keep the answer.
        return [clean_text(t) for t in tokenizer.batch_decode(token_ids[:, width:], skip_special_tokens=True)]

    def _stacked(self, pixels: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.stack(list(pixels)).to(self.device, self.dtype, non_blocking=True)


def _generation(base: GenerationConfig, max_new_tokens: int, num_beams: int) -> GenerationConfig:
    config = copy.deepcopy(base)
    config.update(max_new_tokens=max_new_tokens, num_beams=num_beams)
    return config


ADAPTERS = (Blip2,)
