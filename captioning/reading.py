"""Reading the text in a picture: Florence-2 with its ``<OCR>`` task prompt.

Signs, menus, screenshots, labels, letters: for a person who can't see, the text is often the
whole point of the picture. ``OCR_MODEL`` is ``florence-community/Florence-2-large`` (0.77 B)
by default; ``florence-community/Florence-2-base`` (0.23 B) is the choice on a CPU; empty turns
reading off. It loads like the other models (device, dtype, ``from_pretrained``, once), and a
batch of pictures is read in one ``generate``.

Florence-2 looks at 768 x 768 pixels, far more than BLIP-2's 224: a picture to read is
prepared at its size (:attr:`Reader.input_size`), and the bot fetches a larger photo size for it.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Sequence
from typing import Any

import torch
from PIL import Image

from .settings import EngineSettings

__all__ = ["Reader", "tidy_text"]

log = logging.getLogger(__name__)

TASK = "<OCR>"


def tidy_text(text: str) -> str:
    """Text as read -> lines kept, runs of spaces collapsed, blank edges gone."""
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


class Reader:
    """A Florence-2 processor and model on one device: pictures in, their text out."""

    def __init__(self, processor: Any, model: Any, settings: EngineSettings) -> None:
        self.processor, self.model = processor, model
        size = processor.image_processor.size
        self.input_size = int(size.get("height") or size.get("shortest_edge") or 768)
        # The task prompt's tokens: the same for every picture, so made once.
        prompt = processor(text=TASK, images=Image.new("RGB", (8, 8)), return_tensors="pt")
        self._prompt_ids, self._prompt_mask = prompt.input_ids, prompt.attention_mask
        self.generation = copy.deepcopy(model.generation_config)
        # Never past the decoder's positions (a small model has few).
        longest = getattr(model.config.text_config, "max_position_embeddings", None) or 1024
        self.generation.update(
            max_new_tokens=min(settings.ocr_max_new_tokens, longest - 2),
            num_beams=settings.ocr_num_beams,
            do_sample=False,
        )

    @classmethod
    def load(cls, settings: EngineSettings, device: torch.device, dtype: torch.dtype) -> Reader:
        from transformers import AutoProcessor, Florence2ForConditionalGeneration

        from .models import load_model, load_pretrained

        names = {"role": "reading", "setting": "OCR_MODEL"}
        processor = load_pretrained(AutoProcessor, settings.ocr_model, **names)
        model = load_model(
            Florence2ForConditionalGeneration, settings.ocr_model, settings, device, dtype, **names
        )
        return cls(processor, model, settings)

    def prepare(self, picture: Image.Image) -> torch.Tensor:
        """One picture's pixels, at Florence-2's size, on the CPU."""
        return self.processor.image_processor(picture, return_tensors="pt").pixel_values[0]

    def read(self, pixels: Sequence[torch.Tensor]) -> list[str]:
        """One ``generate`` over the batch -> the text written in each picture ("" for none)."""
        if not pixels:
            return []
        model = self.model
        count = len(pixels)
        with torch.inference_mode():
            token_ids = model.generate(
                input_ids=self._prompt_ids.expand(count, -1).to(model.device),
                attention_mask=self._prompt_mask.expand(count, -1).to(model.device),
                pixel_values=torch.stack(list(pixels)).to(model.device, model.dtype),
                generation_config=self.generation,
            )
        # <OCR>'s answer is pure text: what generate wrote, less its special tokens.
        texts = self.processor.batch_decode(token_ids, skip_special_tokens=True)
        if len(texts) != count:  # the batch contract: one result per input
            raise RuntimeError(f"batch of {count} gave {len(texts)} texts")
        return [tidy_text(text) for text in texts]
