"""``python -m captioning IMAGE [IMAGE ...]``: describe pictures in English and other languages.

``--ask "what color is the car?"`` puts that question to every picture instead (in English, or
in a language with a question model: QUESTION_TRANSLATION_MODELS). ``--lang es,fr`` picks
among the configured translations. ``--read`` reads out the text in each picture instead,
and loads the reading model (OCR_MODEL) alone (``--describe --read``: both). Settings come
from the environment and ``.env``, as the bot's do, with flags on top.

Exit status: 0 when every file was described, 1 when any was rejected, 2 for a usage error
(bad flags or settings, or models that can't be loaded).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CaptioningError, InvalidImage, SettingsError
from .images import load_image
from .languages import english_name
from .questions import MAX_QUESTION_CHARS, Question, question_language
from .settings import EngineSettings
from .tasks import Answer, Describe, Task, Translated

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["main"]

log = logging.getLogger("captioning")


@dataclass(frozen=True)
class Outcome:
    """What happened to one input file: a description, its text read, or why it was rejected."""

    file: str
    result: Translated | None = None
    error: str | None = None
    text: str | None = None

    def as_json(self) -> dict[str, Any]:
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        entry: dict[str, Any] = {"file": self.file}
        if self.result is not None:
            entry["english"] = self.result.english
            if "es" in self.result.translations:
                entry["spanish"] = self.result.translations["es"]
            entry["translations"] = dict(self.result.translations)
        if self.text is not None:
            entry["text"] = self.text
        return entry


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    files = _expand(args.images)
    if not files:
        print("error: no picture files given", file=sys.stderr)
        return 2
    # A missing or unreadable file is said at once, before minutes of model loading.
    outcomes: dict[int, Outcome] = {}
    for index, path in enumerate(files):
        problem = _unreadable(path)
        if problem:
            outcomes[index] = Outcome(str(path), error=problem)
            print(f"{path}: not described: {problem}", file=sys.stderr)
    readable = [i for i in range(len(files)) if i not in outcomes]
    # In --json mode stdout carries the JSON and nothing else: whatever a library prints
    # while loading or generating goes to stderr.
    if readable:
        with contextlib.redirect_stdout(sys.stderr):
            try:
                outcomes.update(_describe_files(files, readable, args))
            except CaptioningError as exc:  # settings or models: one line, not a traceback
                print(f"error: {exc}", file=sys.stderr)
                return 2
    ordered = [outcomes[i] for i in range(len(files))]
    if args.json:
        json.dump([o.as_json() for o in ordered], sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        _print_text(ordered)
    return 1 if any(o.error for o in ordered) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m captioning",
        description="Describe pictures in English and other languages with BLIP-2 and MarianMT.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="picture files, or folders of them")
    parser.add_argument("--json", action="store_true", help="print one JSON array, one object per file")
    parser.add_argument("--caption-model", help="BLIP-2 hub id or folder (env CAPTION_MODEL)")
    parser.add_argument(
        "--translation-model", help="Marian en->es hub id or folder (env TRANSLATION_MODEL; the es entry)"
    )
    parser.add_argument(
        "--lang",
        metavar="CODES",
        help="translations to give, among the configured ones, e.g. es,fr (default: all)",
    )
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (env DEVICE)")
    parser.add_argument("--dtype", help="auto, float16, bfloat16 or float32 (env DTYPE)")
    parser.add_argument(
        "--quantize", choices=["none", "int8"], help="int8: faster on the CPU, in less memory (env QUANTIZE)"
    )
    parser.add_argument(
        "--max-new-tokens", type=int, help="caption length limit (env CAPTION_MAX_NEW_TOKENS)"
    )
    parser.add_argument("--num-beams", type=int, help="caption beams (env CAPTION_NUM_BEAMS)")
    parser.add_argument("--batch-size", type=int, help="pictures per forward pass (env MAX_BATCH_SIZE)")
    parser.add_argument(
        "--ask", metavar="QUESTION", help="answer this question about each picture instead of describing it"
    )
    parser.add_argument("--read", action="store_true", help="read out the text in each picture (OCR_MODEL)")
    parser.add_argument("--describe", action="store_true", help="with --read: describe each picture too")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="log the models, device, dtype, and the time of each step",
    )
    return parser


def _expand(paths: Sequence[str]) -> list[Path]:
    """Files as given; a folder stands for the files directly inside it, sorted by name."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            files.append(path)
    return files


def _unreadable(path: Path) -> str | None:
    """Why ``path`` can't be read, or None."""
    if not path.exists():
        return "No such file."
    if path.is_dir():
        return "This is a folder, not a file."
    if not os.access(path, os.R_OK):
        return "The file can't be read: permission denied."
    return None


def _describe_files(files: list[Path], readable: list[int], args: argparse.Namespace) -> dict[int, Outcome]:
    settings = _settings(args)
    reading = args.read
    describing = args.describe or args.ask is not None or not reading
    if reading and not settings.ocr_model:
        raise SettingsError("--read: reading text is off here (OCR_MODEL is empty).")
    languages = _languages(args.lang, settings)
    question = _question(args.ask, settings) if args.ask is not None else None
    timings = Timings()
    with timings.step("load"):
        engine = _engine(settings, question, reading=reading, describing=describing)
    outcomes: dict[int, Outcome] = {}
    ready = []  # (index, picture)
    size = engine.capabilities.input_size("read" if reading else "describe")
    with timings.step("decode"):
        for index in readable:
            try:
                ready.append((index, load_image(_read(files[index]), min_side=size)))
            except InvalidImage as exc:
                outcomes[index] = Outcome(str(files[index]), error=str(exc))
    task: Task | None = None
    if describing:
        task = Describe(languages=languages)
        if question is not None and ready:
            with timings.step("question"):  # the question's time: translating it, then answering it
                (asked,) = engine.questions.to_english([question])  # once, for every batch
            task = Answer(Question(asked), languages)
    described: dict[int, Translated] = {}
    texts: dict[int, str] = {}
    step = engine.batch_size
    for start in range(0, len(ready), step):
        chunk = ready[start : start + step]
        pictures = [picture for _, picture in chunk]
        if task is not None:
            for (index, _), result in zip(chunk, _describe(engine, pictures, task, timings), strict=True):
                described[index] = result
        if reading:
            with timings.step("read"):
                for (index, _), text in zip(chunk, engine.read(pictures), strict=True):
                    texts[index] = text
    for index, _ in ready:
        outcomes[index] = Outcome(str(files[index]), result=described.get(index), text=texts.get(index))
    log.info(timings.line())
    return outcomes


def _settings(args: argparse.Namespace) -> EngineSettings:
    return EngineSettings.from_env(env_file=".env").with_overrides(
        caption_model=args.caption_model,
        translation_model=args.translation_model,
        device=args.device,
        dtype=args.dtype,
        quantize=args.quantize,
        caption_max_new_tokens=args.max_new_tokens,
        caption_num_beams=args.num_beams,
        max_batch_size=args.batch_size,
    )


def _engine(
    settings: EngineSettings, question: Question | None, *, reading: bool, describing: bool
) -> Engine:
    """The models the command needs: a question model only for a question in another language
    than English; reading alone needs neither BLIP-2 nor the translators."""
    from .engine import Engine  # torch loads here, after the arguments are known to be good

    questions = question is not None and question.language != "en"
    engine = Engine.load(settings, questions=questions, reading=reading, describing=describing)
    if question is not None and question.language not in engine.capabilities.question_languages:
        raise SettingsError(
            f"--ask: questions in {english_name(question.language)} need a question model "
            "(QUESTION_TRANSLATION_MODELS); ask in English instead."
        )
    if reading and not engine.capabilities.can("read"):
        raise SettingsError("--read needs a reading model (OCR_MODEL), and it couldn't be loaded.")
    return engine


def _describe(engine: Engine, pictures: list[Any], task: Task, timings: Timings) -> list[Translated]:
    """One batch described (or asked about), the model's time and the translators' timed apart."""
    languages = getattr(task, "languages", ())
    with timings.step("question" if isinstance(task, Answer) else "caption"):
        english = engine.english(task.kind, pictures, [task] * len(pictures))
    with timings.step("translate"):
        translations = engine.translations.translate(english, [languages] * len(english))
    return [Translated(text, translated) for text, translated in zip(english, translations, strict=True)]


def _languages(choice: str | None, settings: EngineSettings) -> tuple[str, ...]:
    configured = tuple(settings.translators)
    if choice is None:
        return configured
    wanted = tuple(code.strip().lower() for code in choice.split(",") if code.strip())
    unknown = [code for code in wanted if code not in configured and code != "en"]
    if unknown:
        raise SettingsError(
            f"--lang: {', '.join(unknown)} not configured; TRANSLATION_MODELS has "
            f"{', '.join(configured) or 'none'}."
        )
    return tuple(code for code in wanted if code != "en")


def _question(text: str, settings: EngineSettings) -> Question:
    text = " ".join(text.split())
    if not text or len(text) > MAX_QUESTION_CHARS:
        raise SettingsError(f"--ask needs a question of 1 to {MAX_QUESTION_CHARS} characters.")
    return Question(text, question_language(text, languages=settings.detected_languages))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InvalidImage("No such file.", "unreadable") from None
    except IsADirectoryError:
        raise InvalidImage("This is a folder, not a file.", "unreadable") from None
    except OSError as exc:
        raise InvalidImage(f"The file can't be read: {exc.strerror or exc}.", "unreadable") from exc


def _print_text(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        print(outcome.file)
        if outcome.error is not None:
            print(f"  not described: {outcome.error}")
            continue
        if outcome.result is not None:
            print(f"  English: {outcome.result.english}")
            for code, text in outcome.result.translations.items():
                print(f"  {english_name(code)}: {text}")
        if outcome.text is not None:
            lines = outcome.text.split("\n") if outcome.text else ["(no text found)"]
            print("  Text: " + "\n        ".join(lines))


if __name__ == "__main__":
    sys.exit(main())
