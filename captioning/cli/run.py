"""One run of the command line, from the flags to the exit status.

files     the files as given, or a folder's pictures; with --skip-done, those not done yet;
          a missing or unreadable one is said at once, before minutes of model loading
models    only those the work needs (describing, a question, reading)
batches   read, decode, describe, write the alt text, and say each picture's outcome: one
          batch of files in memory at a time, whatever the size of the library
summary   described, skipped, rejected with reasons, alt text written (stderr)
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CaptioningError, InvalidImage
from ..images import load_image
from .alt_text import AltTextWriter
from .describing import Timings, Work, describe, load, settings_for
from .files import DoneFile, PictureFile, expand, read, unreadable
from .output import JsonLines, JsonOutput, Outcome, Output, Summary, TextOutput
from .progress import Progress, stop_after_batch

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["STOPPED", "run"]

log = logging.getLogger("captioning")

STOPPED = 130  # 128 + SIGINT, as shells report a program stopped by Ctrl-C

Entry = tuple[Path, str | None]  # a file, and why it can't be read (None: it can)


def run(args: argparse.Namespace) -> int:
    """Describe the files ``args`` names; the exit status."""
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    files = expand(args.images)
    if not files:
        print("error: no picture files given", file=sys.stderr)
        return 2
    done = DoneFile(args.skip_done) if args.skip_done is not None else None
    todo: list[Entry] = [(path, unreadable(path)) for path in (done.pending(files) if done else files)]
    for path, problem in todo:
        if problem:
            print(f"{path}: not described: {problem}", file=sys.stderr)
    summary = Summary(skipped=len(files) - len(todo), done_file=args.skip_done and str(args.skip_done))
    with contextlib.ExitStack() as stack:
        output = _output(args, done, stack)
        try:
            loaded = _describe(args, todo, output, summary, stack)
        except CaptioningError as exc:  # settings or models: one line, not a traceback
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # a second Ctrl-C: what was written stays written
            summary.not_looked_at = len(todo) - summary.looked_at
            loaded = True
        output.end()
    library = len(files) > 1 or args.write_alt_text or done
    if ((loaded or summary.skipped) and library) or summary.not_looked_at:
        for line in summary.lines():
            print(line, file=sys.stderr)
    if summary.not_looked_at:
        return STOPPED
    return 1 if summary.rejected or summary.alt_text["refused"] else 0


def _output(args: argparse.Namespace, done: DoneFile | None, stack: contextlib.ExitStack) -> Output:
    # stdout as it is now: while the models work, whatever they print goes to stderr instead.
    if done is not None:
        return JsonLines(stack.enter_context(done.appender()))
    if args.jsonl:
        return JsonLines(sys.stdout)
    return JsonOutput(sys.stdout) if args.json else TextOutput(sys.stdout)


def _describe(
    args: argparse.Namespace, todo: list[Entry], output: Output, summary: Summary, stack: contextlib.ExitStack
) -> bool:
    """Every file of ``todo`` to ``output`` and ``summary``, batch by batch; whether the models
    were loaded (not when no file can be read)."""
    if all(problem for _, problem in todo):
        for path, problem in todo:
            _add(Outcome(str(path), error=problem, reason="unreadable"), output, summary)
        return False
    stack.enter_context(contextlib.redirect_stdout(sys.stderr))  # in --json mode, stdout is JSON
    settings = settings_for(args)
    writer = None
    if args.write_alt_text:  # before the models: a missing ExifTool is said at once
        writer = AltTextWriter(overwrite=args.overwrite, keep_mtime=args.keep_mtime)
        stack.callback(writer.close)
    timings = Timings()
    engine, work = load(args, settings, timings)
    progress = Progress(len(todo), shown=args.progress)
    stack.callback(progress.close)
    with stop_after_batch(progress) as stopping:
        for chunk in _chunks(todo, engine.batch_size):
            for outcome in _batch(engine, work, chunk, writer, timings):
                _add(outcome, output, summary)
                if outcome.alt_text is not None and outcome.alt_text.reason:
                    progress.say(f"{outcome.file}: alt text not written: {outcome.alt_text.reason}")
            progress.advance(len(chunk))
            if stopping.asked:
                break
    summary.not_looked_at = len(todo) - summary.looked_at
    log.info(timings.line())
    return True


def _add(outcome: Outcome, output: Output, summary: Summary) -> None:
    output.add(outcome)
    summary.add(outcome)


def _chunks(todo: list[Entry], size: int) -> Iterator[list[Entry]]:
    """``todo`` in order, in chunks of ``size`` readable files (unreadable ones ride along)."""
    chunk: list[Entry] = []
    readable = 0
    for entry in todo:
        chunk.append(entry)
        readable += entry[1] is None
        if readable == size:
            yield chunk
            chunk, readable = [], 0
    if chunk:
        yield chunk


def _batch(
    engine: Engine, work: Work, chunk: list[Entry], writer: AltTextWriter | None, timings: Timings
) -> list[Outcome]:
    """One chunk of files read, decoded, described and written; their outcomes, in order."""
    outcomes: dict[int, Outcome] = {}
    pictures, held = [], []  # the decoded pictures, and (position, file) of each
    with timings.step("decode"):
        for position, (path, problem) in enumerate(chunk):
            file: PictureFile | None = None
            try:
                if problem:
                    raise InvalidImage(problem, "unreadable")
                file = read(path)
                pictures.append(load_image(file.data, min_side=work.size))
                held.append((position, file))
            except InvalidImage as exc:
                sha256 = file.sha256 if file else ""
                outcomes[position] = Outcome(str(path), error=str(exc), reason=exc.reason, sha256=sha256)
    results = describe(engine, work, pictures, timings) if pictures else []
    for (position, file), found in zip(held, results, strict=True):
        written = None
        if writer is not None and found.result is not None:
            with timings.step("alt text"):
                written = writer.write(file.path, file.data, file.stat, found.result, found.detailed)
        outcomes[position] = Outcome(
            str(file.path),
            found.result,
            text=found.text,
            sha256=(written and written.sha256) or file.sha256,
            detailed=found.detailed,
            alt_text=written,
        )
    return [outcomes[i] for i in range(len(chunk))]
