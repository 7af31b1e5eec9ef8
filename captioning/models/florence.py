"""Florence-2 (OCR_MODEL): the text in a picture, with its ``<OCR>`` task prompt; where
things are, with ``<OD>`` (its objects and their boxes, put in words by :mod:`captioning.layout`);
and, beside BLIP-2, the long description, with ``<MORE_DETAILED_CAPTION>`` (OCR_DETAILED_TASK).

Signs, menus, screenshots, labels, letters: for a person who can't see, the text is often the
whole point of the picture. ``OCR_MODEL`` is ``florence-community/Florence-2-large`` (0.77 B)
by default; ``florence-community/Florence-2-base`` (0.23 B) is the choice on a CPU; empty turns
reading off. A batch of pictures is read in one ``generate``.

BLIP-2 writes one sentence however it is asked; Florence-2 writes a paragraph. So with BLIP-2
the long description ("More detail", ``/detail long``) is Florence-2's, a pure text answer
made one line as every description is, which the engine translates like any other. A chat
model writes its own (its adapter doesn't give way: see ``fallbacks``).

Florence-2 looks at 768 x 768 pixels, far more than BLIP-2's 224: a picture for it is prepared
at its size (:attr:`Florence.input_size`), and the bot fetches a larger photo size for it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from PIL import Image

from ..layout import in_words
from ..settings import EngineSettings
from ..text import clean_text, tidy_text
from .base import size_of
from .loading import load_model, load_pretrained

__all__ = ["ADAPTERS", "Florence"]

# A task kind -> Florence-2's task prompt for it; the long description's is OCR_DETAILED_TASK.
PROMPTS = {"read": "<OCR>", "where": "<OD>"}


class Florence:
    """A Florence-2 processor and model on one device: pictures in, their text (or where
    things are in them) out."""

    family: ClassVar[str] = "Florence-2 (florence2)"
    roles: ClassVar[tuple[str, ...]] = ("reading",)
    kinds: tuple[str, ...] = tuple(PROMPTS)  # those its processor can parse the answers of
    fallbacks: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()  # English only

    def __init__(self, processor: Any, model: Any, settings: EngineSettings) -> None:
        self.processor, self.model = processor, model
        self.device, self.dtype = model.device, model.dtype
        self.input_size = size_of(processor, 768)
        # The hub's processors parse <OD>'s boxes; one configured without that parser can't.
        parsers = getattr(getattr(processor, "post_processor", None), "parse_task_config", {})
        boxes = "description_with_bboxes" in parsers
        prompts = {kind: task for kind, task in PROMPTS.items() if kind != "where" or boxes}
        if settings.ocr_detailed_task:
            prompts["describe_detailed"] = settings.ocr_detailed_task
        self.kinds = tuple(prompts)
        # Each task prompt's tokens: the same for every picture, so made once.
        blank = Image.new("RGB", (8, 8))
        self._prompts = {
            kind: processor(text=task, images=blank, return_tensors="pt") for kind, task in prompts.items()
        }
        # Never past the decoder's positions (a small model has few).
        longest = getattr(model.config.text_config, "max_position_embeddings", None) or 1024
        reading = (settings.ocr_max_new_tokens, settings.ocr_num_beams)
        limits = {"describe_detailed": (settings.detailed_max_new_tokens, settings.detailed_num_beams)}
        base = model.generation_config
        self.generation = {kind: _generation(base, *limits.get(kind, reading), longest) for kind in prompts}

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

    def run(
        self, kind: str, pixels: Sequence[torch.Tensor], tasks: Sequence[Any], language: str = "en"
    ) -> list[str]:
        if kind == "describe_detailed":
            return self.describe(pixels)
        return self.where(pixels) if kind == "where" else self.read(pixels)

    def describe(self, pixels: Sequence[torch.Tensor]) -> list[str]:
        """One ``generate`` over the batch -> a paragraph about each picture, on one line."""
        token_ids = self._generate("describe_detailed", pixels)
        return [clean_text(text) for text in self.processor.batch_decode(token_ids, skip_special_tokens=True)]

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
                generation_config=self.generation[kind],
            )


def _generation(base: Any, max_new_tokens: int, num_beams: int, positions: int) -> Any:
    config = copy.deepcopy(base)
    config.update(max_new_tokens=min(max_new_tokens, positions - 2), num_beams=num_beams, do_sample=False)
    return config


ADAPTERS = (Florence,)
