"""``python -m captioning IMAGE [IMAGE ...]``: describe pictures in English and Spanish.

``--ask "what color is the car?"`` puts that question to every picture instead (in English or
Spanish; Spanish questions need QUESTION_TRANSLATION_MODEL, loaded only then).

Exit status: 0 when every file was described, 1 when any was rejected, 2 for a usage error
(bad flags or settings, or models that can't be loaded).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .description import Description
from .errors import CaptioningError, InvalidImage, SettingsError
from .settings import EngineSettings

__all__ = ["main"]

log = logging.getLogger("captioning")


@dataclass(frozen=True)
class Outcome:
    """What happened to one input file: a description, or why it was rejected."""

    file: str
    description: Description | None = None
    error: str | None = None

    def as_json(self) -> dict[str, str]:
        if self.description is None:
            return {"file": self.file, "error": self.error or ""}
        return {"file": self.file, "english": self.description.english, "spanish": self.description.spanish}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    files = _expand(args.images)
    if not files:
        print("error: no picture files given", file=sys.stderr)
        return 2
    # In --json mode stdout carries the JSON and nothing else: whatever a library prints
    # while loading or generating goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            outcomes = _describe_files(files, args)
        except CaptioningError as exc:  # settings or models: one line, not a traceback
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if args.json:
        json.dump([o.as_json() for o in outcomes], sys.stdout, ensure_ascii=False, indent=2)
        print()
    else:
        _print_text(outcomes)
    return 1 if any(o.error for o in outcomes) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m captioning",
        description="Describe pictures in English and Spanish with BLIP-2 and MarianMT.",
    )
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="picture files, or folders of them")
    parser.add_argument("--json", action="store_true", help="print one JSON array, one object per file")
    parser.add_argument("--caption-model", help="BLIP-2 hub id or folder (env CAPTION_MODEL)")
    parser.add_argument("--translation-model", help="Marian en->es hub id or folder (env TRANSLATION_MODEL)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N (env DEVICE)")
    parser.add_argument("--dtype", help="auto, float16, bfloat16 or float32 (env DTYPE)")
    parser.add_argument(
        "--max-new-tokens", type=int, help="caption length limit (env CAPTION_MAX_NEW_TOKENS)"
    )
    parser.add_argument("--num-beams", type=int, help="caption beams (env CAPTION_NUM_BEAMS)")
    parser.add_argument("--batch-size", type=int, help="pictures per forward pass (env MAX_BATCH_SIZE)")
    parser.add_argument(
        "--ask", metavar="QUESTION", help="answer this question about each picture instead of describing it"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log the device, dtype and timings")
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


def _describe_files(files: list[Path], args: argparse.Namespace) -> list[Outcome]:
    settings = EngineSettings.from_env().with_overrides(
        caption_model=args.caption_model,
        translation_model=args.translation_model,
        device=args.device,
        dtype=args.dtype,
        caption_max_new_tokens=args.max_new_tokens,
        caption_num_beams=args.num_beams,
        max_batch_size=args.batch_size,
    )
    from .engine import Engine  # torch loads here, after the arguments are known to be good

    question = None
    if args.ask is not None:
        from .questions import MAX_QUESTION_CHARS, Question, question_language

        text = " ".join(args.ask.split())
        if not text or len(text) > MAX_QUESTION_CHARS:
            raise SettingsError(f"--ask needs a question of 1 to {MAX_QUESTION_CHARS} characters.")
        question = Question(text, question_language(text))
    # The es->en model is only needed for a question in Spanish.
    engine = Engine.load(settings, questions=question is not None and question.language == "es")
    outcomes: list[Outcome | None] = [None] * len(files)
    ready = []  # (index, prepared picture)
    for index, path in enumerate(files):
        try:
            ready.append((index, engine.prepare(_read(path))))
        except InvalidImage as exc:
            outcomes[index] = Outcome(str(path), error=str(exc))
    step = settings.max_batch_size
    for start in range(0, len(ready), step):
        chunk = ready[start : start + step]
        batch = [picture for _, picture in chunk]
        descriptions = engine.answer(batch, [question] * len(batch)) if question else engine.describe(batch)
        for (index, _), description in zip(chunk, descriptions, strict=True):
            outcomes[index] = Outcome(str(files[index]), description=description)
    return [o for o in outcomes if o is not None]


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
        if outcome.description is None:
            print(f"  not described: {outcome.error}")
        else:
            print(f"  English: {outcome.description.english}")
            print(f"  Spanish: {outcome.description.spanish}")


if __name__ == "__main__":
    sys.exit(main())
