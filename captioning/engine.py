"""Pictures and tasks in, results out: the model adapters and the translators, composed.

    prepare(picture, task)      CPU only, any thread: bytes -> picture -> the pixels of the
                                model that does the task
    run(kind, pictures, tasks)  N in, N out: the route's adapter writes English (a question
                                put in English first), the translators the rest; a chat
                                model writes the languages of CHAT_MODEL_LANGUAGES itself,
                                one pass per language (a question in one of them as asked)

:attr:`Engine.routes` is the one table from a task kind to the adapter that does it, built
from what each loaded adapter says it does (:mod:`captioning.models`): the first that does a
kind does it, and one that does it only as a fallback (BLIP-2's detailed caption) only where
no other does (Florence-2's paragraph, beside BLIP-2); ``translate`` needs no picture and goes
to the translators. The engine knows no model family, and
:attr:`Engine.capabilities` is made here, once, from that table.

``Engine.load(describing=False)`` loads the reading model alone (``python -m captioning
--read``): no BLIP-2, no translators, and no describing kinds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from PIL import Image

from .capabilities import Capabilities
from .errors import ModelLoadError, SettingsError
from .images import load_image
from .models import PictureModel, load_adapter
from .models.loading import check_quantize, resolve_device, resolve_dtype
from .questions import Question
from .settings import EngineSettings
from .tasks import Answer, Describe, Read, Translated
from .text import whole_sentences
from .translation import load_translators
from .translation.texts import Translations

__all__ = ["Engine", "PreparedPicture", "Question", "Translated"]

log = logging.getLogger(__name__)

# What a missing kind needs, for the person who asked for it.
_DESCRIBING = "Describing needs the caption model (CAPTION_MODEL); this engine was loaded to read text only."
_NEEDS = {"describe": _DESCRIBING, "describe_detailed": _DESCRIBING, "answer": _DESCRIBING}
_NEEDS["read"] = "Reading text needs OCR_MODEL."
# What a model writes as sentences: one cut short by its token limit ends at its last whole
# sentence (a text read from a picture is verbatim, cut or not).
_PROSE = frozenset({"describe", "describe_detailed", "answer"})


@dataclass(frozen=True)
class PreparedPicture:
    """A picture ready for the model that does its task: normalised pixels, on the CPU."""

    # What the model's adapter prepared: BLIP-2's and Florence-2's (3, height, width) float32
    # tensor; a chat model's tensors and prompt text (captioning.models.chat.ChatPicture).
    pixel_values: Any


Picture = bytes | Image.Image | PreparedPicture


class Engine:
    """Model adapters (a captioner, a reader, or both) and translators, over batches."""

    def __init__(
        self,
        models: Sequence[PictureModel],
        settings: EngineSettings,
        *,
        translations: Translations | None = None,
        questions: Translations | None = None,
    ) -> None:
        if not models:
            raise ValueError("an engine needs a caption model, a reader, or both")
        self.models, self.settings = list(models), settings
        self.translations = translations or Translations({})
        self.questions = questions or Translations({})  # each language -> English
        self.device, self.dtype = self.models[0].device, self.models[0].dtype
        self.routes = _routes(self.models)
        sizes = {kind: model.input_size for kind, model in self.routes.items()}
        # The languages a model writes itself (a chat model's CHAT_MODEL_LANGUAGES) are offered
        # as the translators' are; a question in one it answers in is put to it as asked.
        own = [code for model in self.routes.values() for code in model.languages]
        answering = self.routes["answer"].languages if "answer" in self.routes else ()
        self.capabilities = Capabilities(
            languages=("en", *dict.fromkeys((*self.translations.languages, *own))),
            question_languages=("en", *dict.fromkeys((*self.questions.languages, *answering))),
            sizes={**sizes, "translate": 0},  # into the languages it has translators for
            batch_size=settings.batch_size_for(self.device.type),
        )

    @classmethod
    def load(
        cls,
        settings: EngineSettings | None = None,
        *,
        questions: bool = True,
        reading: bool = True,
        describing: bool = True,
        detailed: bool = False,
    ) -> Engine:
        """Load the models named in ``settings`` (default: from the environment and ``.env``).

        The caption model and the translators are needed: one that can't be loaded raises
        :class:`ModelLoadError`. The question translators and the reading model are optional:
        one that can't be loaded is logged in one line, and what it does is off.
        ``questions=False`` or ``reading=False`` leaves them out; with ``detailed``, the reading
        model is loaded all the same where it writes the long description (OCR_DETAILED_TASK,
        beside a caption model whose own is only a fallback: BLIP-2's).

        ``describing=False`` loads the reading model alone (``python -m captioning --read``
        needs no BLIP-2 and no Marian, some 15 GB): then it is needed, and one that is off
        (empty OCR_MODEL) is a :class:`SettingsError`.
        """
        settings = settings or EngineSettings.from_env()
        if not describing and not (reading and settings.ocr_model):
            raise SettingsError("Reading text is off (OCR_MODEL is empty), and nothing else was asked for.")
        device, dtype, int8 = _placement(settings, describing)
        started = time.monotonic()
        models: list[PictureModel] = []
        translations = asked = Translations({})
        if describing:
            models.append(load_adapter("caption", settings.caption_model, settings, device, dtype))
            _check_own_languages(settings, models[0])
            translations, asked = _translators(settings, device, dtype, questions=questions)
        gives_way = any("describe_detailed" in m.fallbacks for m in models)
        writes_long = detailed and settings.ocr_detailed_task and gives_way
        if settings.ocr_model and (reading or writes_long):
            models += _optional_reader(settings, device, dtype, needed=not describing)
        log.info(
            "Models loaded on %s in %s in %.1f s: caption=%s translations=%s questions=%s reading=%s",
            device,
            "int8" if int8 else str(dtype).removeprefix("torch."),
            time.monotonic() - started,
            settings.caption_model if describing else "-",
            ",".join(f"{code}={settings.translators[code]}" for code in translations.languages) or "-",
            ",".join(asked.languages) or "-",
            settings.ocr_model if any("read" in m.kinds for m in models) else "-",
        )
        return cls(models, settings, translations=translations, questions=asked)

    @property
    def batch_size(self) -> int:
        """Pictures per forward pass: MAX_BATCH_SIZE, or what suits this device."""
        return self.capabilities.batch_size

    def problem(self) -> str | None:
        """Nothing goes wrong with loaded models that /healthz could tell."""
        return None

    # -- preprocess: CPU only, safe on any thread ------------------------------------------

    def prepare(
        self, picture: bytes | bytearray | Image.Image | None, task: Any = None
    ) -> PreparedPicture | None:
        """Decode (if bytes) and normalise one picture for ``task`` (its model's size and
        normalisation); raises ``InvalidImage`` for bad bytes. A task on no picture: None."""
        if picture is None:
            return None
        model = self._route(getattr(task, "kind", "describe"))
        if isinstance(picture, (bytes, bytearray)):
            picture = load_image(picture, min_side=model.input_size)
        return PreparedPicture(model.prepare(picture))

    # -- the executor's entry point ---------------------------------------------------------

    def run(self, kind: str, pictures: list[Any], tasks: list[Any]) -> list[Any]:
        """N prepared pictures and N tasks of one ``kind`` -> N results, in order: Translated
        for a task with ``languages``, else the text itself."""
        if len(tasks) != len(pictures):
            raise ValueError(f"{len(pictures)} pictures but {len(tasks)} tasks")
        if kind == "translate":
            return self._translate_texts(tasks)
        prepared = [self._prepared(p, t) for p, t in zip(pictures, tasks, strict=True)]
        english = self.english(kind, prepared, tasks)
        if not tasks or getattr(tasks[0], "languages", None) is None:
            return english
        return self.in_languages(kind, prepared, tasks, english)

    def english(self, kind: str, pictures: Sequence[Picture], tasks: Sequence[Any]) -> list[str]:
        """What the route's adapter writes for each picture, in English (a question asked in
        another language is put in English first, unless the adapter writes that language
        itself: then it goes as asked)."""
        return self._written(kind, pictures, tasks, "en")

    def in_languages(
        self, kind: str, pictures: Sequence[Picture], tasks: Sequence[Any], english: Sequence[str]
    ) -> list[Translated]:
        """Each English text in its task's ``languages``: written by the route's adapter in
        those it writes itself (CHAT_MODEL_LANGUAGES: one pass per language, over the pictures
        that want it), translated into the rest."""
        own = self._route(kind).languages
        written = {code: self._written_for(code, kind, pictures, tasks) for code in own}
        rest = [[code for code in t.languages if code not in own] for t in tasks]
        # A sentence at a time where a text is long (a paragraph, "More detail"): Marian writes
        # at most TRANSLATION_MAX_NEW_TOKENS, and translates sentences best.
        translated = self.translations.translate_texts(english, rest)
        results = []
        for i, (text, task) in enumerate(zip(english, tasks, strict=True)):
            found = {**translated[i], **{code: texts[i] for code, texts in written.items() if i in texts}}
            results.append(Translated(text, {code: found[code] for code in task.languages if code in found}))
        return results

    # -- the whole way, for callers without an executor (the CLI, benchmarks) --------------

    def describe(
        self, pictures: Sequence[Picture], *, detailed: bool = False, languages: Collection[str] | None = None
    ) -> list[Translated]:
        """Describe a batch: caption all pictures at once, then translate all captions at once,
        into ``languages`` (default: every one there is besides English)."""
        task = Describe(detailed, self._others() if languages is None else tuple(languages))
        return self.run(task.kind, list(pictures), [task] * len(pictures))

    def answer(
        self,
        pictures: Sequence[Picture],
        questions: Sequence[Question | str],
        *,
        languages: Collection[str] | None = None,
    ) -> list[Translated]:
        """Answer one question per picture, in three batched passes: questions to English,
        the answers, and their translations."""
        wanted = self._others() if languages is None else tuple(languages)
        asked = [q if isinstance(q, Question) else Question(q) for q in questions]
        if len(asked) != len(pictures):
            raise ValueError(f"{len(pictures)} pictures but {len(asked)} questions")
        return self.run("answer", list(pictures), [Answer(q, wanted) for q in asked])

    def read(self, pictures: Sequence[Picture]) -> list[str]:
        """The text written in each picture, in one batched pass ("" where there is none)."""
        return self.run("read", list(pictures), [Read()] * len(pictures))

    def warm_up(self) -> float:
        """One small batch of each kind, so the first person doesn't pay for start-up; seconds."""
        started = time.monotonic()
        grey = Image.new("RGB", (224, 224), (128, 128, 128))
        if self.capabilities.can("describe"):
            self.describe([grey, grey])
        if self.capabilities.can("answer"):
            for code in self.capabilities.question_languages:
                self.answer([grey], [Question("what color is it?", code)])
        if self.capabilities.can("read"):
            self.read([grey])
        return time.monotonic() - started

    # -- helpers ---------------------------------------------------------------------------

    def _others(self) -> tuple[str, ...]:
        return self.capabilities.languages[1:]  # after "en"

    def _route(self, kind: str) -> PictureModel:
        try:
            return self.routes[kind]
        except KeyError:
            if kind in _NEEDS:
                raise SettingsError(_NEEDS[kind]) from None
            raise ValueError(
                f"this engine can't do {kind!r} (it does {', '.join(self.capabilities.kinds)})"
            ) from None

    def _prepared(self, picture: Picture, task: Any) -> PreparedPicture:
        if isinstance(picture, PreparedPicture):
            return picture
        prepared = self.prepare(picture, task)
        assert prepared is not None  # a picture in, pixels out
        return prepared

    def _written(
        self, kind: str, pictures: Sequence[Picture], tasks: Sequence[Any], language: str
    ) -> list[str]:
        """What the route's adapter writes for each picture in ``language``."""
        model = self._route(kind)
        if not pictures:
            return []
        pixels = [self._prepared(p, t).pixel_values for p, t in zip(pictures, tasks, strict=True)]
        texts = model.run(kind, pixels, self._in_english(tasks, keep=model.languages), language)
        if len(texts) != len(pictures):  # the batch contract: one result per input
            raise RuntimeError(f"batch of {len(pictures)} gave {len(texts)} results")
        return [whole_sentences(text) for text in texts] if kind in _PROSE else texts

    def _written_for(
        self, code: str, kind: str, pictures: Sequence[Picture], tasks: Sequence[Any]
    ) -> dict[int, str]:
        """What the route's adapter writes in ``code`` for each task that wants it, by position."""
        rows = [i for i, task in enumerate(tasks) if code in task.languages]
        texts = self._written(kind, [pictures[i] for i in rows], [tasks[i] for i in rows], code)
        return dict(zip(rows, texts, strict=True))

    def _in_english(self, tasks: Sequence[Any], keep: Collection[str] = ()) -> list[Any]:
        """The tasks, each question (and the earlier ones it follows) put in English: one
        pass per language; a question in a language of ``keep`` (those the model writes
        itself) goes as asked."""
        asked = [
            i
            for i, t in enumerate(tasks)
            if isinstance(getattr(t, "question", None), Question) and t.question.language not in keep
        ]
        if not asked:
            return list(tasks)
        questions = [q for i in asked for q in (tasks[i].question, *(q for q, _ in tasks[i].earlier))]
        english = iter(self.questions.to_english(questions))
        done = list(tasks)
        for i in asked:
            question = Question(next(english), "en")
            earlier = tuple((Question(next(english), "en"), answer) for _, answer in tasks[i].earlier)
            done[i] = dataclasses.replace(tasks[i], question=question, earlier=earlier)
        return done

    def _translate_texts(self, tasks: Sequence[Any]) -> list[Translated]:
        translated = self.translations.translate_texts([t.text for t in tasks], [t.languages for t in tasks])
        return [Translated(t.text, each) for t, each in zip(tasks, translated, strict=True)]


def _routes(models: Sequence[PictureModel]) -> dict[str, PictureModel]:
    """Each task kind -> the first model that does it, the models' fallbacks last."""
    routes: dict[str, PictureModel] = {}
    for fallback in (False, True):
        for model in models:
            for kind in model.kinds:
                if (kind in model.fallbacks) is fallback:
                    routes.setdefault(kind, model)
    return {kind: routes[kind] for model in models for kind in model.kinds}  # in the models' order


def _check_own_languages(settings: EngineSettings, captioner: PictureModel) -> None:
    """CHAT_MODEL_LANGUAGES needs a caption model that writes other languages (a chat model's
    adapter takes them): with another, one log line says they are translated instead."""
    if settings.chat_languages and not captioner.languages:
        log.warning(
            "CHAT_MODEL_LANGUAGES=%s is ignored: the caption model (%s) writes English only; "
            "those languages are translated where TRANSLATION_MODELS has a model for them.",
            ",".join(settings.chat_languages),
            captioner.family,
        )
    elif captioner.languages:
        log.info(
            "The caption model writes %s itself (CHAT_MODEL_LANGUAGES); the rest is translated.",
            ",".join(captioner.languages),
        )


def _placement(settings: EngineSettings, describing: bool) -> tuple[torch.device, torch.dtype, bool]:
    """The device, the dtype, and whether the models go in int8; refused settings in one line."""
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
    return device, dtype, int8


def _translators(
    settings: EngineSettings, device: torch.device, dtype: torch.dtype, *, questions: bool
) -> tuple[Translations, Translations]:
    """English into each language (needed), and each language into English (optional)."""
    into = load_translators(
        settings.translators, settings, device, dtype, role="translation", setting="TRANSLATION_MODELS"
    )

    def question_model_failed(code: str, exc: ModelLoadError) -> None:
        log.warning("%s. Questions in %r are off; the rest works.", str(exc).rstrip("."), code)

    back = load_translators(
        settings.question_translators if questions else {},
        settings,
        device,
        dtype,
        role="question translation",
        setting="QUESTION_TRANSLATION_MODELS",
        on_error=question_model_failed,
    )
    tokens = settings.translation_max_new_tokens
    return Translations(into, max_new_tokens=tokens), Translations(back, max_new_tokens=tokens)


def _optional_reader(
    settings: EngineSettings, device: torch.device, dtype: torch.dtype, *, needed: bool
) -> list[PictureModel]:
    """The reading model, or none (one log line) when it can't be loaded and isn't ``needed``.
    Loaded to read alone (``needed``), it writes no long description either."""
    if needed:
        settings = settings.with_overrides(ocr_detailed_task="")
    try:
        return [load_adapter("reading", settings.ocr_model, settings, device, dtype)]
    except ModelLoadError as exc:
        if needed:  # reading is all that was asked for
            raise
        log.warning("%s. Reading text is off; the rest works.", str(exc).rstrip("."))
        return []
