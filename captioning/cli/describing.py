"""The models a run needs, what it asks of each picture, and one batch through them."""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import SettingsError
from ..languages import english_name
from ..questions import MAX_QUESTION_CHARS, Question, question_language
from ..settings import EngineSettings
from ..tasks import Answer, Describe, Translated

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["Results", "Timings", "Work", "describe", "load", "settings_for"]


class Timings:
    """Seconds spent in each step, for ``-v``."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.spent[name] = self.spent.get(name, 0.0) + time.monotonic() - started

    def line(self) -> str:
        return "Timings: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.spent.items())


@dataclass(frozen=True)
class Work:
    """What is asked of every picture: a description or an answer, a detailed description,
    the text in it; and the input size its pictures are decoded for."""

    task: Describe | Answer | None
    detailed: Describe | None
    reading: bool
    size: int


@dataclass(frozen=True)
class Results:
    """One picture's results, as :class:`Work` asked."""

    result: Translated | None = None
    detailed: Translated | None = None
    text: str | None = None


def settings_for(args: argparse.Namespace) -> EngineSettings:
    """The environment and ``.env``, with the flags on top; raises SettingsError."""
    settings = EngineSettings.from_env(env_file=".env").with_overrides(
        caption_model=args.caption_model,
        translation_model=args.translation_model,
        device=args.device,
        dtype=args.dtype,
        quantize=args.quantize,
        caption_max_new_tokens=args.max_new_tokens,
        caption_num_beams=args.num_beams,
        max_batch_size=args.batch_size,
    )
    if args.read and not settings.ocr_model:
        raise SettingsError("--read: reading text is off here (OCR_MODEL is empty).")
    return settings


def load(args: argparse.Namespace, settings: EngineSettings, timings: Timings) -> tuple[Engine, Work]:
    """The models the command needs, and the work; raises CaptioningError (settings, models)."""
    reading = args.read
    describing = args.describe or args.ask is not None or not reading
    languages = _languages(args.lang, settings)
    question = _question(args.ask, settings) if args.ask is not None else None
    with timings.step("load"):
        engine = _engine(settings, question, reading=reading, describing=describing, detailed=args.detailed)
    task: Describe | Answer | None = Describe(languages=languages) if describing else None
    if question is not None and question.language not in engine.routes["answer"].languages:
        with timings.step("question"):  # put in English once, for every batch
            (asked,) = engine.questions.to_english([question])
        task = Answer(Question(asked), languages)
    elif question is not None:  # asked of a chat model that writes its language itself: as asked
        task = Answer(question, languages)
    detailed = Describe(detailed=True, languages=languages) if args.detailed else None
    # Decoded large enough for every model that looks at it (Florence-2, reading or writing
    # the long description beside BLIP-2, looks at 768 px; BLIP-2 at 224).
    kinds = [t.kind for t in (task, detailed) if t is not None] + ["read"] * reading
    size = max((engine.capabilities.input_size(k) for k in kinds if engine.capabilities.can(k)), default=0)
    return engine, Work(task, detailed, reading, size)


def describe(engine: Engine, work: Work, pictures: list[Any], timings: Timings) -> list[Results]:
    """One batch of decoded pictures through every model the work needs; N in, N out."""
    found: dict[str, list[Any]] = {}
    if work.task is not None:
        found["result"] = _translated(engine, pictures, work.task, timings)
    if work.detailed is not None:
        found["detailed"] = _translated(engine, pictures, work.detailed, timings)
    if work.reading:
        with timings.step("read"):
            found["text"] = engine.read(pictures)
    return [Results(**{name: values[i] for name, values in found.items()}) for i in range(len(pictures))]


def _translated(
    engine: Engine, pictures: list[Any], task: Describe | Answer, timings: Timings
) -> list[Translated]:
    """The model's English, then the other languages (translated, or written by the model
    itself: CHAT_MODEL_LANGUAGES), timed apart."""
    tasks = [task] * len(pictures)
    with timings.step("question" if isinstance(task, Answer) else "caption"):
        english = engine.english(task.kind, pictures, tasks)
    with timings.step("translate"):
        return engine.in_languages(task.kind, pictures, tasks, english)


def _engine(
    settings: EngineSettings, question: Question | None, *, reading: bool, describing: bool, detailed: bool
) -> Engine:
    """The models the command needs: a question model only for a question in another language
    than English; reading alone needs neither BLIP-2 nor the translators; ``detailed`` needs the
    reading model where it writes the long description (beside BLIP-2)."""
    from ..engine import Engine  # torch loads here, after the arguments are known to be good

    questions = question is not None and question.language != "en"
    engine = Engine.load(
        settings, questions=questions, reading=reading, describing=describing, detailed=detailed
    )
    if question is not None and question.language not in engine.capabilities.question_languages:
        raise SettingsError(
            f"--ask: questions in {english_name(question.language)} need a question model "
            "(QUESTION_TRANSLATION_MODELS); ask in English instead."
        )
    if reading and not engine.capabilities.can("read"):
        raise SettingsError("--read needs a reading model (OCR_MODEL), and it couldn't be loaded.")
    return engine


def _languages(choice: str | None, settings: EngineSettings) -> tuple[str, ...]:
    configured = settings.languages[1:]  # after "en": the translations, and a chat model's own
    if choice is None:
        return configured
    wanted = tuple(code.strip().lower() for code in choice.split(",") if code.strip())
    unknown = [code for code in wanted if code not in configured and code != "en"]
    if unknown:
        own = settings.chat_languages
        raise SettingsError(
            f"--lang: {', '.join(unknown)} not configured; TRANSLATION_MODELS has "
            f"{', '.join(settings.translators) or 'none'}"
            + (f", CHAT_MODEL_LANGUAGES {', '.join(own)}." if own else ".")
        )
    return tuple(code for code in wanted if code != "en")


def _question(text: str, settings: EngineSettings) -> Question:
    text = " ".join(text.split())
    if not text or len(text) > MAX_QUESTION_CHARS:
        raise SettingsError(f"--ask needs a question of 1 to {MAX_QUESTION_CHARS} characters.")
    return Question(text, question_language(text, languages=settings.detected_languages))
