"""Pictures in, captions, answers and their translations out: preprocess, forward, postprocess.

The steps are kept apart so that they can run in different places:

* :meth:`Engine.prepare` is CPU work (decode, resize, normalise) for any thread;
* :meth:`Engine.caption`, :meth:`Engine.ask` and the translators are the forward passes, one
  ``generate`` over a whole batch each (one per language for translations), and the only code
  that touches a model;
* :func:`clean_text` is the postprocessing they share.

:meth:`Engine.run` is what the executor calls: a task kind, N pictures and N tasks in, N results
out, in input order, through :data:`Engine.KINDS`, the one table from kind to method.

``Engine.load(describing=False)`` loads the reading model alone (``python -m captioning
--read``): no BLIP-2, no translators, and no describing kinds in :data:`Engine.KINDS`.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image
from transformers import Blip2ForConditionalGeneration, Blip2Processor, GenerationConfig

from .errors import ModelLoadError, SettingsError
from .images import load_image
from .models import check_quantize, load_model, load_pretrained, resolve_device, resolve_dtype
from .questions import Question, prompt
from .reading import Reader
from .settings import EngineSettings
from .tasks import Answer, Describe, Read, Translate, Translated
from .translation import Translator, clean_text, load_translators, text_lines, translation_pieces

__all__ = ["Engine", "PreparedPicture", "Question", "Translated", "clean_text"]

log = logging.getLogger(__name__)

# Tokens of a question that BLIP-2 is shown; MAX_QUESTION_CHARS keeps real ones well below.
MAX_QUESTION_TOKENS = 96
# Characters of a text read that go to Marian in one piece, per token of its output limit
# (TRANSLATION_MAX_NEW_TOKENS): opus-mt's tokens average 3 to 5 characters, so a piece of
# 2 characters a token (160 at the default 80) comes back whole.
PIECE_CHARS_PER_TOKEN = 2
# Texts per translator ``generate``: every caption of a batch fits; a page read in a picture
# may be hundreds of lines, which go in batches this size.
MAX_TRANSLATION_ROWS = 64


@dataclass(frozen=True)
class PreparedPicture:
    """A picture ready for the caption model: normalised pixels, on the CPU."""

    pixel_values: torch.Tensor  # (3, height, width), float32


Picture = bytes | Image.Image | PreparedPicture


# The kinds that need BLIP-2: an engine loaded to read only has none of them.
CAPTION_KINDS = ("describe", "describe_detailed", "answer")
_NO_CAPTIONER = (
    "Describing needs the caption model (CAPTION_MODEL); this engine was loaded to read text only."
)


class Engine:
    """BLIP-2, then a translator per language, over batches; and a reader of text, if loaded.

    An engine loaded to read only (``Engine.load(describing=False)``) has no captioner,
    processor or translators: what needs them raises :class:`SettingsError`.
    """

    def __init__(
        self,
        processor: Blip2Processor | None,
        captioner: Blip2ForConditionalGeneration | None,
        translators: Mapping[str, Translator],
        settings: EngineSettings,
        *,
        question_translators: Mapping[str, Translator] | None = None,
        reader: Reader | None = None,
    ) -> None:
        if (processor is None) != (captioner is None):
            raise ValueError("the caption model needs its processor, and the processor its model")
        if captioner is None and reader is None:
            raise ValueError("an engine needs a caption model, a reader, or both")
        self.processor, self.captioner, self.settings = processor, captioner, settings
        self.translators = dict(translators)
        self.question_translators = dict(question_translators or {})
        self.reader = reader
        if captioner is not None:
            self.device, self.dtype = captioner.device, captioner.dtype
            size = processor.image_processor.size
            # BLIP-2 looks at a square of this many pixels a side (224 for the hub models).
            self.input_size = int(size.get("height") or size.get("shortest_edge") or 224)
            # BLIP-2 must be handed its generation config: it passes generation on to its inner
            # language model, which would otherwise use bare defaults.
            base = captioner.generation_config
            self._caption_generation = _generation_config(
                base, max_new_tokens=settings.caption_max_new_tokens, num_beams=settings.caption_num_beams
            )
            # "Describe again": beam search and room for a longer sentence.
            self._detailed_generation = _generation_config(
                base, max_new_tokens=settings.detailed_max_new_tokens, num_beams=settings.detailed_num_beams
            )
            # Questions: greedy and short, like the VQA answers BLIP-2 was tuned on.
            self._answer_generation = _generation_config(
                base, max_new_tokens=settings.answer_max_new_tokens, num_beams=settings.answer_num_beams
            )
        else:  # reading only: the reader's device and picture size
            self.device, self.dtype = reader.model.device, reader.model.dtype
            self.input_size = reader.input_size
        # The one table from a task's kind to the method that does it.
        self.KINDS: dict[str, Callable[[list[Any], list[Any]], list[Any]]] = {}
        if captioner is not None:
            self.KINDS.update(
                describe=self._describe_tasks,
                describe_detailed=self._describe_tasks,
                answer=self._answer_tasks,
            )
        self.KINDS["translate"] = self._translate_tasks  # into the languages it has translators for
        if reader is not None:
            self.KINDS["read"] = self._read_tasks

    @classmethod
    def load(
        cls,
        settings: EngineSettings | None = None,
        *,
        questions: bool = True,
        reading: bool = True,
        describing: bool = True,
    ) -> Engine:
        """Load the models named in ``settings`` (default: from the environment and ``.env``).

        The caption model and the translators are needed: one that can't be loaded raises
        :class:`ModelLoadError`. The question translators and the reading model are optional:
        one that can't be loaded is logged in one line, and what it does is off.
        ``questions=False`` or ``reading=False`` leaves them out.

        ``describing=False`` loads the reading model alone (``python -m captioning --read``
        needs no BLIP-2 and no Marian, some 15 GB): then it is needed, and one that is off
        (empty OCR_MODEL) is a :class:`SettingsError`.
        """
        settings = settings or EngineSettings.from_env()
        if not describing and not (reading and settings.ocr_model):
            raise SettingsError("Reading text is off (OCR_MODEL is empty), and nothing else was asked for.")
        if settings.quantize == "int8" and settings.device.startswith("cuda"):
            check_quantize("int8", torch.device("cuda"), torch.float16)  # refused, in one line
        device = resolve_device(settings.device)
        dtype = resolve_dtype(settings.dtype, device)
        int8 = check_quantize(settings.quantize, device, dtype)
        if describing and device.type == "cpu" and dtype == torch.float32 and not int8:
            log.info(
                "On the CPU, QUANTIZE=int8 describes about 5x faster in under half the memory "
                "(BLIP-2 OPT-2.7b: 3.3 s a picture against 16 s, 6.5 GB against 16 GB; "
                "docs/benchmarks.md)."
            )
        started = time.monotonic()
        processor = captioner = None
        translators: dict[str, Translator] = {}
        question_translators: dict[str, Translator] = {}
        if describing:
            processor, captioner = _load_captioner(settings, device, dtype)
            translators = load_translators(
                settings.translators,
                settings,
                device,
                dtype,
                role="translation",
                setting="TRANSLATION_MODELS",
            )

            def question_model_failed(code: str, exc: ModelLoadError) -> None:
                log.warning("%s. Questions in %r are off; the rest works.", str(exc).rstrip("."), code)

            question_translators = load_translators(
                settings.question_translators if questions else {},
                settings,
                device,
                dtype,
                role="question translation",
                setting="QUESTION_TRANSLATION_MODELS",
                on_error=question_model_failed,
            )
        reader = None
        if settings.ocr_model and reading:
            try:
                reader = Reader.load(settings, device, dtype)
            except ModelLoadError as exc:
                if not describing:  # reading is all that was asked for
                    raise
                log.warning("%s. Reading text is off; the rest works.", str(exc).rstrip("."))
        log.info(
            "Models loaded on %s in %s in %.1f s: caption=%s translations=%s questions=%s reading=%s",
            device,
            "int8" if int8 else str(dtype).removeprefix("torch."),
            time.monotonic() - started,
            settings.caption_model if describing else "-",
            ",".join(f"{code}={settings.translators[code]}" for code in translators) or "-",
            ",".join(question_translators) or "-",
            settings.ocr_model if reader is not None else "-",
        )
        return cls(
            processor,
            captioner,
            translators,
            settings,
            question_translators=question_translators,
            reader=reader,
        )

    @property
    def languages(self) -> tuple[str, ...]:
        """What descriptions and answers can be given in: English and each translation."""
        return ("en", *self.translators)

    @property
    def question_languages(self) -> tuple[str, ...]:
        """What questions can be asked in: English and each language with a question model."""
        return ("en", *self.question_translators)

    @property
    def batch_size(self) -> int:
        """Pictures per forward pass: MAX_BATCH_SIZE, or what suits this device."""
        return self.settings.batch_size_for(self.device.type)

    @property
    def can_describe(self) -> bool:
        """Whether pictures can be described and questions answered (not loaded to read only)."""
        return self.captioner is not None

    @property
    def can_read(self) -> bool:
        """Whether the text in pictures can be read (OCR_MODEL set, and loaded)."""
        return self.reader is not None

    @property
    def read_size(self) -> int:
        """The reading model's input, in pixels a side: a picture to read is fetched this large."""
        return self.reader.input_size if self.reader is not None else self.input_size

    # -- preprocess: CPU only, safe on any thread ------------------------------------------

    def prepare(self, picture: bytes | Image.Image | None, task: Any = None) -> PreparedPicture | None:
        """Decode (if bytes) and normalise one picture for ``task`` (its model's size and
        normalisation); raises ``InvalidImage`` for bad bytes. A task on no picture: None."""
        if picture is None:
            return None
        reading = getattr(task, "kind", None) == "read" and self.reader is not None
        if not reading and self.processor is None:
            raise SettingsError(_NO_CAPTIONER)
        if isinstance(picture, (bytes, bytearray, memoryview)):
            picture = load_image(picture, min_side=self.reader.input_size if reading else self.input_size)
        if reading:
            return PreparedPicture(self.reader.prepare(picture))
        features = self.processor.image_processor(picture, return_tensors="pt")
        return PreparedPicture(features["pixel_values"][0])

    # -- the executor's entry point ---------------------------------------------------------

    def run(self, kind: str, pictures: list[Any], tasks: list[Any]) -> list[Any]:
        """N prepared pictures and N tasks of one ``kind`` -> N results, in order."""
        try:
            method = self.KINDS[kind]
        except KeyError:
            if kind in CAPTION_KINDS and self.captioner is None:
                raise SettingsError(_NO_CAPTIONER) from None
            raise ValueError(f"this engine can't do {kind!r} (it does {', '.join(self.KINDS)})") from None
        if len(tasks) != len(pictures):
            raise ValueError(f"{len(pictures)} pictures but {len(tasks)} tasks")
        return method(pictures, tasks) if pictures else []

    def _describe_tasks(self, pictures: list[Any], tasks: list[Describe]) -> list[Translated]:
        english = self.caption(self._prepared(pictures), detailed=tasks[0].detailed)
        return self._translated(english, [t.languages for t in tasks])

    def _answer_tasks(self, pictures: list[Any], tasks: list[Answer]) -> list[Translated]:
        english = self.ask(self._prepared(pictures), self.to_english([t.question for t in tasks]))
        return self._translated(english, [t.languages for t in tasks])

    def _read_tasks(self, pictures: list[Any], tasks: list[Read]) -> list[str]:
        prepared = [p if isinstance(p, PreparedPicture) else self.prepare(p, tasks[0]) for p in pictures]
        return self.reader.read([p.pixel_values for p in prepared])

    def _translate_tasks(self, pictures: list[Any], tasks: list[Translate]) -> list[Translated]:
        # Marian translates a sentence, not a page: it reads at most 512 tokens, writes at most
        # TRANSLATION_MAX_NEW_TOKENS, and on one line. So a menu goes line by line, a letter
        # paragraph by paragraph (its wrapped lines joined: text_lines), a long line in pieces
        # cut at sentence ends, and the pieces of every text in batches per language. Blank
        # lines and the order of lines are kept.
        limit = PIECE_CHARS_PER_TOKEN * self.settings.translation_max_new_tokens
        layouts = [[translation_pieces(line, limit) for line in text_lines(t.text)] for t in tasks]
        pieces, languages = [], []
        for task, lines in zip(tasks, layouts, strict=True):
            for line in lines:
                pieces += line
                languages += [task.languages] * len(line)
        done = iter(self.translate(pieces, languages))
        results = []
        for task, lines in zip(tasks, layouts, strict=True):
            translated = [[next(done) for _ in line] for line in lines]
            codes = [c for c in self.translators if c in task.languages] if any(lines) else []
            results.append(Translated(task.text, {code: _rejoined(translated, code) for code in codes}))
        return results

    # -- forward: the only code that touches the models ------------------------------------

    def caption(self, pictures: Sequence[PreparedPicture], *, detailed: bool = False) -> list[str]:
        """One BLIP-2 ``generate`` over the batch -> an English caption per picture.

        ``detailed`` uses beam search and a longer limit (DETAILED_NUM_BEAMS, ..._MAX_NEW_TOKENS).
        """
        if self.captioner is None:
            raise SettingsError(_NO_CAPTIONER)
        if not pictures:
            return []
        pixel_values = self._pixels(pictures)
        with torch.inference_mode():
            token_ids = self.captioner.generate(
                pixel_values=pixel_values,
                generation_config=self._detailed_generation if detailed else self._caption_generation,
            )
        texts = self.processor.batch_decode(token_ids, skip_special_tokens=True)
        return _same_length(pictures, [clean_text(t) for t in texts])

    def ask(self, pictures: Sequence[PreparedPicture], questions: Sequence[str]) -> list[str]:
        """One BLIP-2 ``generate`` over the batch -> an English answer per (picture, question).

        Each row is the picture's query tokens, BOS and ``Question: ... Answer:``, padded on
        the left so that every row's answer starts at the same column.
        """
        if self.captioner is None:
            raise SettingsError(_NO_CAPTIONER)
        if len(questions) != len(pictures):
            raise ValueError(f"{len(pictures)} pictures but {len(questions)} questions")
        if not pictures:
            return []
        config = self.captioner.config
        tokenizer = self.processor.tokenizer
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
            token_ids = self.captioner.generate(
                pixel_values=self._pixels(pictures),
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=self._answer_generation,
            )
        # The language model returns the prompt and then the answer: keep the answer.
        texts = tokenizer.batch_decode(token_ids[:, width:], skip_special_tokens=True)
        return _same_length(pictures, [clean_text(t) for t in texts])

    def translate(self, english: Sequence[str], languages: Sequence[Collection[str]]) -> list[dict[str, str]]:
        """Each English text into the languages wanted for it: one ``generate`` per language,
        over every text that wants it (at most MAX_TRANSLATION_ROWS at a time: a long page
        read in a picture doesn't make one huge batch). Languages without a translator are
        left out."""
        out: list[dict[str, str]] = [{} for _ in english]
        for code, translator in self.translators.items():
            wanted = [i for i, langs in enumerate(languages) if code in langs and english[i]]
            for start in range(0, len(wanted), MAX_TRANSLATION_ROWS):
                rows = wanted[start : start + MAX_TRANSLATION_ROWS]
                for i, text in zip(rows, translator.translate([english[i] for i in rows]), strict=True):
                    out[i][code] = text
        return out

    def to_english(self, questions: Sequence[Question | str]) -> list[str]:
        """The questions in English: those in other languages translated, one pass per language."""
        asked = [q if isinstance(q, Question) else Question(q) for q in questions]
        english = [q.text if q.language == "en" else "" for q in asked]
        for code in {q.language for q in asked} - {"en"}:
            translator = self.question_translators.get(code)
            if translator is None:
                raise SettingsError(
                    f"Questions in {code!r} need a question model (QUESTION_TRANSLATION_MODELS)."
                )
            wanted = [i for i, q in enumerate(asked) if q.language == code]
            for i, text in zip(wanted, translator.translate([asked[i].text for i in wanted]), strict=True):
                english[i] = text
        return english

    # -- the whole way, for callers without an executor (the CLI, benchmarks) --------------

    def describe(
        self, pictures: Sequence[Picture], *, detailed: bool = False, languages: Collection[str] | None = None
    ) -> list[Translated]:
        """Describe a batch: caption all pictures at once, then translate all captions at once,
        into ``languages`` (default: every configured translation)."""
        task = Describe(detailed, tuple(self.translators if languages is None else languages))
        return self.run(task.kind, list(pictures), [task] * len(pictures))

    def answer(
        self,
        pictures: Sequence[Picture],
        questions: Sequence[Question | str],
        *,
        languages: Collection[str] | None = None,
    ) -> list[Translated]:
        """Answer one question per picture, in three batched passes: questions to English,
        BLIP-2's answers, and their translations."""
        wanted = tuple(self.translators if languages is None else languages)
        asked = [q if isinstance(q, Question) else Question(q) for q in questions]
        if len(asked) != len(pictures):
            raise ValueError(f"{len(pictures)} pictures but {len(asked)} questions")
        return self.run("answer", list(pictures), [Answer(q, wanted) for q in asked])

    def read(self, pictures: Sequence[Picture]) -> list[str]:
        """The text written in each picture, in one batched pass ("" where there is none)."""
        if self.reader is None:
            raise SettingsError("Reading text needs OCR_MODEL.")
        return self.run("read", list(pictures), [Read()] * len(pictures))

    def warm_up(self) -> float:
        """One small batch of each kind, so the first person doesn't pay for start-up; seconds."""
        started = time.monotonic()
        grey = Image.new("RGB", (self.input_size,) * 2, (128, 128, 128))
        if self.captioner is not None:
            self.describe([grey, grey])
            for code in self.question_languages:
                self.answer([grey], [Question("what color is it?", code)])
        if self.reader is not None:
            self.read([grey])
        return time.monotonic() - started

    # -- helpers ---------------------------------------------------------------------------

    def _prepared(self, pictures: Sequence[Picture]) -> list[PreparedPicture]:
        return [p if isinstance(p, PreparedPicture) else self.prepare(p) for p in pictures]

    def _pixels(self, pictures: Sequence[PreparedPicture]) -> torch.Tensor:
        return torch.stack([p.pixel_values for p in pictures]).to(self.device, self.dtype, non_blocking=True)

    def _translated(self, english: list[str], languages: Sequence[Collection[str]]) -> list[Translated]:
        translations = self.translate(english, languages)
        return [Translated(e, t) for e, t in zip(english, translations, strict=True)]


def _load_captioner(
    settings: EngineSettings, device: torch.device, dtype: torch.dtype
) -> tuple[Blip2Processor, Blip2ForConditionalGeneration]:
    caption = {"role": "caption", "setting": "CAPTION_MODEL"}
    processor = load_pretrained(Blip2Processor, settings.caption_model, **caption)
    captioner = load_model(
        Blip2ForConditionalGeneration, settings.caption_model, settings, device, dtype, **caption
    )
    return processor, captioner


def _generation_config(base: GenerationConfig, **settings: int) -> GenerationConfig:
    config = copy.deepcopy(base)
    config.update(**settings)
    return config


def _rejoined(lines: list[list[dict[str, str]]], code: str) -> str:
    """The translations into ``code`` of each line's pieces, put back into lines."""
    return "\n".join(" ".join(piece[code] for piece in line if piece.get(code)) for line in lines)


def _same_length(inputs: Sequence[object], outputs: list[str]) -> list[str]:
    # The batch contract: one result per input. A model that breaks it is a bug, not bad input.
    if len(outputs) != len(inputs):
        raise RuntimeError(f"batch of {len(inputs)} gave {len(outputs)} results")
    return outputs
