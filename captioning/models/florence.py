"""Florence-2 (OCR_MODEL): the text in a picture, with its ``<OCR>`` task prompt, and where
things are, with ``<OD>`` (its objects and their boxes, put in words by :mod:`captioning.layout`).

Signs, menus, screenshots, labels, letters: for a person who can't see, the text is often the
whole point of the picture. ``OCR_MODEL`` is ``florence-community/Florence-2-large`` (0.77 B)
by default; ``florence-community/Florence-2-base`` (0.23 B) is the choice on a CPU; empty turns
reading off. A batch of pictures is read in one ``generate``.

Florence-2 looks at 768 x 768 pixels, far more than BLIP-2's 224: a picture to read is
prepared at its size (:attr:`Florence.input_size`), and the bot fetches a larger photo size for it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from PIL import Image

from ..layout import in_words
from ..settings import EngineSettings
from ..text import tidy_text
from .base import size_of
from .loading import load_model, load_pretrained

__all__ = ["ADAPTERS", "Florence"]

# A task kind -> Florence-2's task prompt for it.
PROMPTS = {"read": "<OCR>", "where": "<OD>"}


class Florence:
    """A Florence-2 processor and model on one device: pictures in, their text (or where
    things are in them) out."""

    family: ClassVar[str] = "Florence-2 (florence2)"
    roles: ClassVar[tuple[str, ...]] = ("reading",)
    kinds: tuple[str, ...] = tuple(PROMPTS)  # those its processor can parse the answers of

    def __init__(self, processor: Any, model: Any, settings: EngineSettings) -> None:
        self.processor, self.model = processor, model
        self.device, self.dtype = model.device, model.dtype
        self.input_size = size_of(processor, 768)
        # The hub's processors parse <OD>'s boxes; one configured without that parser can't.
        parsers = getattr(getattr(processor, "post_processor", None), "parse_task_config", {})
        self.kinds = tuple(k for k in PROMPTS if k != "where" or "description_with_bboxes" in parsers)
        # Each task prompt's tokens: the same for every picture, so made once.
        blank = Image.new("RGB", (8, 8))
        self._prompts = {
            kind: processor(text=task, images=blank, return_tensors="pt") for kind, task in PROMPTS.items()
        }
        self.generation = copy.deepcopy(model.generation_config)
        # Never past the decoder's positions (a small model has few).
        longest = getattr(model.config.text_config, "max_position_embeddings", None) or 1024
        self.generation.update(
            max_new_tokens=min(settings.ocr_max_new_tokens, longest - 2),
            num_beams=settings.ocr_num_beams,
            do_sample=False,
        )

    @classmethod
    def supports(cls, config: Mapping[str, Any]) -> bool:
        return config.get("model_type") == "florence2"

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
    ) -> Florence:
        from transformers import AutoProcessor, Florence2ForConditionalGeneration

        processor = load_pretrained(AutoProcessor, name, role=role, setting=setting)
        model = load_model(
            Florence2ForConditionalGeneration, name, settings, device, dtype, role=role, setting=setting
        )
        return cls(processor, model, settings)

    def prepare(self, picture: Image.Image) -> torch.Tensor:
        return self.processor.image_processor(picture, return_tensors="pt").pixel_values[0]

    def run(self, kind: str, pixels: Sequence[torch.Tensor], tasks: Sequence[Any]) -> list[str]:
        return self.where(pixels) if kind == "where" else self.read(pixels)

    def read(self, pixels: Sequence[torch.Tensor]) -> list[str]:
        """One ``generate`` over the batch -> the text written in each picture ("" for none)."""
        token_ids = self._generate("read", pixels)
        # <OCR>'s answer is pure text: what generate wrote, less its special tokens.
        return [tidy_text(text) for text in self.processor.batch_decode(token_ids, skip_special_tokens=True)]

    def where(self, pixels: Sequence[torch.Tensor]) -> list[str]:
        """One ``generate`` over the batch -> where things are in each picture, in words ("" for
        nothing found). <OD> writes each object's name and its box as four <loc_N> tokens
        (special tokens, so kept in the decoding), which the processor parses."""
        side = pixels[0].shape[-1] if pixels else self.input_size
        texts = self.processor.batch_decode(self._generate("where", pixels), skip_special_tokens=False)
        found = [
            self.processor.post_process_generation(text, task=PROMPTS["where"], image_size=(side, side))[
                "<OD>"
            ]
            for text in texts
        ]
        return [in_words(zip(f["labels"], f["bboxes"], strict=True), side) for f in found]

    def _generate(self, kind: str, pixels: Sequence[torch.Tensor]) -> torch.Tensor:
        model, count, prompt = self.model, len(pixels), self._prompts[kind]
        with torch.inference_mode():
            return model.generate(
                input_ids=prompt.input_ids.expand(count, -1).to(model.device),
                attention_mask=prompt.attention_mask.expand(count, -1).to(model.device),
                pixel_values=torch.stack(list(pixels)).to(model.device, model.dtype),
                generation_config=self.generation,
            )


ADAPTERS = (Florence,)
