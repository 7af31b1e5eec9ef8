"""Pictures in, :class:`Description` out: preprocess, forward, postprocess.

The three steps are kept apart so that they can run in different places:

* :meth:`Engine.prepare` is CPU work (decode, resize, normalise) for any thread;
* :meth:`Engine.caption`, :meth:`Engine.ask` and the translations are the forward passes,
  one ``generate`` over a whole batch each, and the only methods that touch a model;
* :func:`clean_text` is the postprocessing both share.

A batch of N pictures always gives N results, in input order.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from transformers import GenerationConfig

from .description import Description
from .errors import SettingsError
from .images import load_image
from .models import Models, load_models
from .questions import Question, prompt
from .settings import EngineSettings

__all__ = ["Description", "Engine", "PreparedPicture", "Question", "clean_text"]

# Tokens of a question that BLIP-2 is shown; MAX_QUESTION_CHARS keeps real ones well below.
MAX_QUESTION_TOKENS = 96


@dataclass(frozen=True)
class PreparedPicture:
    """A picture ready for the caption model: normalised pixels, on the CPU."""

    pixel_values: torch.Tensor  # (3, height, width), float32


def clean_text(text: str) -> str:
    """Generated text -> one tidy line: no stray whitespace or line breaks."""
    return re.sub(r"\s+", " ", text).strip()


class Engine:
    """BLIP-2 then MarianMT, over batches."""

    def __init__(self, models: Models, settings: EngineSettings) -> None:
        self.models = models
        self.settings = settings
        size = models.processor.image_processor.size
        # BLIP-2 looks at a square of this many pixels a side (224 for the hub models).
        self.input_size = int(size.get("height") or size.get("shortest_edge") or 224)
        # Each checkpoint's own generation config (from its generation_config.json), with the
        # settings on top. BLIP-2 must be handed its config: it passes generation on to its
        # inner language model, which would otherwise use bare defaults.
        self._caption_generation = _generation_config(
            models.captioner.generation_config,
            max_new_tokens=settings.caption_max_new_tokens,
            num_beams=settings.caption_num_beams,
        )
        # "Describe again": beam search and room for a longer sentence.
        self._detailed_generation = _generation_config(
            models.captioner.generation_config,
            max_new_tokens=settings.detailed_max_new_tokens,
            num_beams=settings.detailed_num_beams,
        )
        # Questions: greedy and short, like the VQA answers BLIP-2 was tuned on.
        self._answer_generation = _generation_config(
            models.captioner.generation_config,
            max_new_tokens=settings.answer_max_new_tokens,
            num_beams=settings.answer_num_beams,
        )
        self._translation_generation = _generation_config(
            models.translator.generation_config,
            max_new_tokens=settings.translation_max_new_tokens,
            num_beams=settings.translation_num_beams,
        )
        self._question_generation = (
            _generation_config(
                models.question_translator.generation_config,
                max_new_tokens=settings.translation_max_new_tokens,
                num_beams=settings.translation_num_beams,
            )
            if models.question_translator is not None
            else None
        )

    @classmethod
    def load(cls, settings: EngineSettings | None = None, *, questions: bool = True) -> Engine:
        """Load the models named in ``settings`` (default: from the environment).

        ``questions=False`` skips the es->en model, for callers that never ask questions.
        """
        settings = settings or EngineSettings.from_env()
        return cls(load_models(settings, questions=questions), settings)

    # -- preprocess: CPU only, safe on any thread ------------------------------------------

    def prepare(self, picture: bytes | Image.Image) -> PreparedPicture:
        """Decode (if bytes) and normalise one picture; raises ``InvalidImage`` for bad bytes."""
        if isinstance(picture, (bytes, bytearray, memoryview)):
            picture = load_image(bytes(picture), min_side=self.input_size)
        features = self.models.processor.image_processor(picture, return_tensors="pt")
        return PreparedPicture(features["pixel_values"][0])

    # -- forward: the only code that touches the models ------------------------------------

    def caption(self, pictures: Sequence[PreparedPicture], *, detailed: bool = False) -> list[str]:
        """One BLIP-2 ``generate`` over the batch -> an English caption per picture.

        ``detailed`` uses beam search and a longer limit (DETAILED_NUM_BEAMS, ..._MAX_NEW_TOKENS).
        """
        if not pictures:
            return []
        models = self.models
        pixel_values = torch.stack([p.pixel_values for p in pictures]).to(
            models.device, models.dtype, non_blocking=True
        )
        with torch.inference_mode():
            token_ids = models.captioner.generate(
                pixel_values=pixel_values,
                generation_config=self._detailed_generation if detailed else self._caption_generation,
            )
        texts = models.processor.batch_decode(token_ids, skip_special_tokens=True)
        return _same_length(pictures, [clean_text(t) for t in texts])

    def ask(self, pictures: Sequence[PreparedPicture], questions: Sequence[str]) -> list[str]:
        """One BLIP-2 ``generate`` over the batch -> an English answer per (picture, question).

        Each row is the picture's query tokens, BOS and ``Question: ... Answer:``, padded on
        the left so that every row's answer starts at the same column.
        """
        if len(questions) != len(pictures):
            raise ValueError(f"{len(pictures)} pictures but {len(questions)} questions")
        if not pictures:
            return []
        models = self.models
        config = models.captioner.config
        tokenizer = models.processor.tokenizer
        head = [config.image_token_index] * config.num_query_tokens + [config.text_config.bos_token_id]
        rows = [
            head + tokenizer(prompt(q), add_special_tokens=False).input_ids[-MAX_QUESTION_TOKENS:]
            for q in questions
        ]
        width = max(map(len, rows))
        pad = tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=models.device)
        attention = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=models.device)
        pixel_values = torch.stack([p.pixel_values for p in pictures]).to(
            models.device, models.dtype, non_blocking=True
        )
        with torch.inference_mode():
            token_ids = models.captioner.generate(
                pixel_values=pixel_values,
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=self._answer_generation,
            )
        # The language model returns the prompt and then the answer: keep the answer.
        texts = tokenizer.batch_decode(token_ids[:, width:], skip_special_tokens=True)
        return _same_length(pictures, [clean_text(t) for t in texts])

    def translate(self, english: Sequence[str]) -> list[str]:
        """One Marian ``generate`` over the batch -> a Spanish text per English one."""
        models = self.models
        return self._marian(models.tokenizer, models.translator, self._translation_generation, english)

    def to_english(self, questions: Sequence[Question | str]) -> list[str]:
        """The questions in English: the Spanish ones translated in one es->en ``generate``."""
        asked = [q if isinstance(q, Question) else Question(q) for q in questions]
        spanish = [q.text if q.language == "es" else "" for q in asked]
        models = self.models
        if any(spanish):
            if models.question_translator is None or models.question_tokenizer is None:
                raise SettingsError("Spanish questions need the es->en model (QUESTION_TRANSLATION_MODEL).")
            translated = self._marian(
                models.question_tokenizer, models.question_translator, self._question_generation, spanish
            )
        else:
            translated = spanish
        return [t if q.language == "es" else q.text for q, t in zip(asked, translated, strict=True)]

    def _marian(
        self, tokenizer, model, generation: GenerationConfig | None, texts: Sequence[str]
    ) -> list[str]:
        todo = [i for i, text in enumerate(texts) if text]
        out = [""] * len(texts)
        if not todo:
            return out
        batch = tokenizer([texts[i] for i in todo], return_tensors="pt", padding=True, truncation=True).to(
            self.models.device
        )
        with torch.inference_mode():
            token_ids = model.generate(**batch, generation_config=generation)
        decoded = _same_length(todo, tokenizer.batch_decode(token_ids, skip_special_tokens=True))
        for i, text in zip(todo, decoded, strict=True):
            out[i] = clean_text(text)
        return out

    # -- the whole way ---------------------------------------------------------------------

    def describe(
        self, pictures: Sequence[bytes | Image.Image | PreparedPicture], *, detailed: bool = False
    ) -> list[Description]:
        """Describe a batch: caption all pictures at once, then translate all captions at once."""
        prepared = [p if isinstance(p, PreparedPicture) else self.prepare(p) for p in pictures]
        english = self.caption(prepared, detailed=detailed)
        spanish = self.translate(english)
        return [Description(e, s) for e, s in zip(english, spanish, strict=True)]

    def answer(
        self, pictures: Sequence[bytes | Image.Image | PreparedPicture], questions: Sequence[Question | str]
    ) -> list[Description]:
        """Answer one question per picture, in English and Spanish, in three batched passes:
        Spanish questions to English, BLIP-2's answers, and their translation to Spanish."""
        prepared = [p if isinstance(p, PreparedPicture) else self.prepare(p) for p in pictures]
        english = self.ask(prepared, self.to_english(questions))
        spanish = self.translate(english)
        return [Description(e, s) for e, s in zip(english, spanish, strict=True)]


def _generation_config(base: GenerationConfig, **settings: int) -> GenerationConfig:
    config = copy.deepcopy(base)
    config.update(**settings)
    return config


def _same_length(inputs: Sequence[object], outputs: list[str]) -> list[str]:
    # The batch contract: one result per input. A model that breaks it is a bug, not bad input.
    if len(outputs) != len(inputs):
        raise RuntimeError(f"batch of {len(inputs)} gave {len(outputs)} results")
    return outputs
