"""What the CLI says about each file, as each batch is done: text, one JSON array, or JSON lines;
and the summary at the end.

    text      each file, its description in every language, as soon as its batch is done
    --json    one array, in input order, at the end (as it always was)
    --jsonl   one object a line, flushed as each picture is done; also ``sha256``, what
              ``--skip-done`` goes by
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import IO, Any, Protocol

from ..languages import english_name
from ..tasks import Translated
from .alt_text import Written

__all__ = ["JsonLines", "JsonOutput", "Outcome", "Output", "Summary", "TextOutput"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one input file: a description, its text read, or why it was rejected;
    with ``--detailed`` a detailed description, with ``--write-alt-text`` what became of that."""

    file: str
    result: Translated | None = None
    error: str | None = None
    text: str | None = None
    reason: str = ""  # a rejection's code (InvalidImage.reason), for the summary
    sha256: str = ""
    detailed: Translated | None = None
    alt_text: Written | None = None

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
        if self.detailed is not None:
            detailed = self.detailed
            entry["detailed"] = {"english": detailed.english, "translations": dict(detailed.translations)}
        if self.alt_text is not None:
            entry["alt_text"] = self.alt_text.status
            if self.alt_text.reason:
                entry["alt_text_error"] = self.alt_text.reason
        return entry


class Output(Protocol):
    def add(self, outcome: Outcome) -> None: ...

    def end(self) -> None: ...


class TextOutput:
    """Labelled text, each file as soon as it is done."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def add(self, outcome: Outcome) -> None:
        print("\n".join(_text_lines(outcome)), file=self.stream, flush=True)

    def end(self) -> None:
        pass


class JsonOutput:
    """One JSON array of every file, in input order, at the end."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.entries: list[dict[str, Any]] = []

    def add(self, outcome: Outcome) -> None:
        self.entries.append(outcome.as_json())

    def end(self) -> None:
        json.dump(self.entries, self.stream, ensure_ascii=False, indent=2)
        print(file=self.stream)


class JsonLines:
    """One JSON object a line, written and flushed as each file is done: a run stopped at any
    point keeps every line before it."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def add(self, outcome: Outcome) -> None:
        entry = outcome.as_json()
        if outcome.sha256:
            entry["sha256"] = outcome.sha256
        self.stream.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self.stream.flush()

    def end(self) -> None:
        self.stream.flush()


def _text_lines(outcome: Outcome) -> list[str]:
    lines = [outcome.file]
    if outcome.error is not None:
        return [*lines, f"  not described: {outcome.error}"]
    for label, result in (("{}", outcome.result), ("Detailed ({})", outcome.detailed)):
        if result is not None:
            named = {"en": result.english, **result.translations}
            lines += [f"  {label.format(english_name(code))}: {text}" for code, text in named.items()]
    if outcome.text is not None:
        text = outcome.text.split("\n") if outcome.text else ["(no text found)"]
        lines.append("  Text: " + "\n        ".join(text))
    if outcome.alt_text is not None:
        lines.append(f"  Alt text: {_ALT_TEXT[outcome.alt_text.status]}{outcome.alt_text.reason}")
    return lines


_ALT_TEXT = {
    "written": "written",
    "kept": "kept (the picture has alt text already; --overwrite replaces it)",
    "refused": "not written: ",
}


class Summary:
    """Counts for the line at the end: described, skipped, rejected (by reason), alt text."""

    def __init__(self, skipped: int = 0, done_file: str | None = None) -> None:
        self.skipped, self.done_file = skipped, done_file
        self.described = 0
        self.rejected: Counter[str] = Counter()
        self.alt_text: Counter[str] = Counter()
        self.alt_refusals: Counter[str] = Counter()
        self.not_looked_at = 0

    def add(self, outcome: Outcome) -> None:
        if outcome.error is not None:
            self.rejected[outcome.reason or "not_a_picture"] += 1
        else:
            self.described += 1
        if outcome.alt_text is not None:
            self.alt_text[outcome.alt_text.status] += 1
            if outcome.alt_text.code:
                self.alt_refusals[outcome.alt_text.code] += 1

    @property
    def looked_at(self) -> int:
        return self.described + sum(self.rejected.values())

    def lines(self) -> list[str]:
        parts = [f"Described {self.described}"]
        if self.skipped:
            parts.append(f"skipped {self.skipped} (already in {self.done_file})")
        rejected = sum(self.rejected.values())
        if rejected:
            reasons = ", ".join(f"{_words(code)}: {n}" for code, n in self.rejected.most_common())
            parts.append(f"rejected {rejected} ({reasons})")
        lines = [", ".join(parts) + "."]
        if self.alt_text:
            lines.append(self._alt_text_line())
        if self.not_looked_at:
            again = f"; run again with --skip-done {self.done_file} to go on" if self.done_file else ""
            lines.append(f"Stopped early: {self.not_looked_at} not looked at{again}.")
        return lines

    def _alt_text_line(self) -> str:
        parts = [f"Alt text written into {self.alt_text['written']}"]
        if self.alt_text["kept"]:
            parts.append(f"kept in {self.alt_text['kept']} that had it (--overwrite replaces it)")
        if self.alt_text["refused"]:
            reasons = ", ".join(f"{code}: {n}" for code, n in self.alt_refusals.most_common())
            parts.append(f"refused for {self.alt_text['refused']} ({reasons})")
        return ", ".join(parts) + "."


def _words(code: str) -> str:
    """A rejection's code (InvalidImage.reason) as words: "not_a_picture" -> "not a picture"."""
    return code.upper() if code in ("pdf", "svg", "heic") else code.replace("_", " ")
