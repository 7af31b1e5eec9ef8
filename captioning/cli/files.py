"""The files of a run: as given, or the pictures in a folder; read one at a time, when their
batch comes, so a library of any size takes the memory of one batch.

A picture is known by its path and the SHA-256 of its bytes (``--skip-done``): a file that is
edited after its description was written is described again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import InvalidImage

__all__ = ["DoneFile", "PictureFile", "expand", "read", "sha256_of", "unreadable"]


@dataclass(frozen=True)
class PictureFile:
    """A file's bytes, their hash, and its status (size, times, owner) when they were read."""

    path: Path
    data: bytes
    sha256: str
    stat: os.stat_result


def expand(paths: Sequence[str]) -> list[Path]:
    """Files as given; a folder stands for the files directly inside it, sorted by name (hidden
    files left out: among them the copies that alt text is written into)."""
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        else:
            files.append(path)
    return files


def unreadable(path: Path) -> str | None:
    """Why ``path`` can't be read, or None."""
    if not path.exists():
        return "No such file."
    if path.is_dir():
        return "This is a folder, not a file."
    if not os.access(path, os.R_OK):
        return "The file can't be read: permission denied."
    return None


def read(path: Path) -> PictureFile:
    """The file's bytes and what they were read with, or InvalidImage (``unreadable``)."""
    try:
        with open(path, "rb") as handle:
            stat = os.fstat(handle.fileno())
            data = handle.read()
    except FileNotFoundError:
        raise InvalidImage("No such file.", "unreadable") from None
    except IsADirectoryError:
        raise InvalidImage("This is a folder, not a file.", "unreadable") from None
    except OSError as exc:
        raise InvalidImage(f"The file can't be read: {exc.strerror or exc}.", "unreadable") from exc
    return PictureFile(path, data, hashlib.sha256(data).hexdigest(), stat)


def sha256_of(path: Path) -> str | None:
    """The file's SHA-256, read a megabyte at a time; None if it can't be read."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()


class DoneFile:
    """A JSON Lines file of an earlier run (``--skip-done``): what it holds is skipped, and this
    run's lines are added to its end.

    A line is done when it names a file (its absolute path, so ``pics/a.jpg`` and
    ``./pics/a.jpg`` are one) and that file's ``sha256``. A rejected picture counts too: the same
    bytes get the same answer. A file that couldn't be opened has no hash, and is tried again.
    A line cut short by a killed run is passed over, and the next line starts on a line of its own.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.hashes: dict[str, set[str]] = {}
        for entry in _entries(path):
            self.hashes.setdefault(os.path.abspath(entry["file"]), set()).add(entry["sha256"])

    def done(self, path: Path) -> bool:
        """Whether ``path``, with its content as it is now, is in the file."""
        known = self.hashes.get(os.path.abspath(path), set())
        return bool(known) and sha256_of(path) in known

    def pending(self, paths: Iterable[Path]) -> list[Path]:
        return [path for path in paths if not self.done(path)]

    def appender(self) -> IO[str]:
        """The file, to add lines to its end (a line cut short ended first)."""
        with open(self.path, "ab+") as raw:
            if raw.seek(0, os.SEEK_END):
                raw.seek(-1, os.SEEK_END)
                if raw.read(1) != b"\n":
                    raw.write(b"\n")
        return open(self.path, "a", encoding="utf-8")


def _entries(path: Path) -> list[dict[str, str]]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []  # the first run: nothing done yet
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("file"), str) and entry.get("sha256"):
            found.append(entry)
    return found
