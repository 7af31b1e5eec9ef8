"""Files made from a model and kept between starts: the int8 models (``QUANTIZED_CACHE_DIR``)
and the CTranslate2 conversions (``CT2_CACHE_DIR``) share this one way of keeping them.

* **Keyed.** An entry is named after the model for people, then for the model's identity,
  then for the rest of what it was made from (revision, scheme, versions):
  ``<model>-<8 hex>-<16 hex><suffix>``. A new revision, torch or format is a new entry.
* **Written whole.** An entry (a file, or a folder) is made beside its place, flushed to disk
  (``fsync``), and renamed into it: nobody reads half an entry, and an entry in place is read
  without any lock, even after a power cut.
* **Made once.** Making one takes ``<model>-<8 hex>.lock`` (``flock``): processes starting
  together on one machine make it once, and the others wait, then use it. A lock that can't
  be taken (a read-only folder) is one warning, and the caller makes its model without
  keeping it. The lock files stay (a few bytes each): one removed while another process
  waits on it would let a third lock a new file of the same name, and two would write at once.
* **Pruned by use.** Using an entry marks it used (its modification time). The entries of a
  model that nothing has used for ``unused_days`` (another revision, torch or transformers,
  since gone) are removed, and so are the temporary files and folders of writers that died.
  Only names this module writes can match.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import first_line

__all__ = ["DerivedFiles", "Entry", "fsync_tree"]

log = logging.getLogger(__name__)

# A temporary file or folder untouched for this long was left by a writer that died.
ABANDONED_S = 3600


@dataclass(frozen=True)
class Entry:
    """One derived file or folder: where it goes, and the key it was made for."""

    path: Path
    key: str
    suffix: str = ""

    @property
    def prefix(self) -> str:
        """What the entries of this entry's model share: ``<model>-<8 hex>``."""
        return self.path.name.removesuffix(self.suffix).rsplit("-", 1)[0]


class DerivedFiles:
    """A folder of entries derived from models (see the module's docstring)."""

    def __init__(
        self,
        folder: Path,
        *,
        suffix: str = "",
        unused_days: int = 14,
        verbs: tuple[str, str] = ("makes", "making"),
    ) -> None:
        self.folder, self.suffix, self.unused_days = Path(folder).expanduser(), suffix, unused_days
        # How the log says what is done to make an entry: ("quantizes", "quantizing"), say.
        self.verbs = verbs

    def entry(self, name: str, identity: dict[str, Any], key: dict[str, Any]) -> Entry:
        """The entry of ``name`` (how people know the model), whose ``identity`` names the model
        and the kind of entry, and whose ``key`` holds the rest it was made from."""
        full = json.dumps({**identity, **key}, sort_keys=True)
        readable = re.sub(r"[^\w.-]+", "--", name).strip("-")[:80] or "model"
        stem = f"{readable}-{_digest(identity)[:8]}-{_digest(full)[:16]}"
        return Entry(self.folder / f"{stem}{self.suffix}", full, self.suffix)

    @contextlib.contextmanager
    def locked(self, entry: Entry, what: str) -> Iterator[bool]:
        """Holds the entry's model's lock for the ``with`` block: one process at a time makes
        it. Gives False, after one warning, where the lock can't be taken (``what``: the
        model, for the log)."""
        path = entry.path.with_name(f"{entry.prefix}.lock")
        with contextlib.ExitStack() as held:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
                held.callback(os.close, handle)  # closed, the lock is let go (also by a process that dies)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    log.info("Waiting while another process %s %s (it holds %s).", self.verbs[0], what, path)
                    fcntl.flock(handle, fcntl.LOCK_EX)
            except OSError as exc:  # a read-only folder, a file system without locks
                log.warning(
                    "Can't lock %s (%s); %s %s without saving it.",
                    path,
                    first_line(exc, 200),
                    self.verbs[1],
                    what,
                )
                locked = False
            else:
                locked = True
            yield locked

    def write(self, entry: Entry, make: Callable[[Path], None]) -> None:
        """``make(path)`` writes the entry at a temporary path beside its place (a file, or a
        folder); it is then flushed to disk and renamed into place. An entry another process
        put in place meanwhile is kept."""
        entry.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(
            tempfile.mkdtemp(dir=entry.path.parent, prefix=f".{entry.path.name}.", suffix=".tmp")
        )
        made = temporary / "entry"
        try:
            make(made)
            fsync_tree(made)
            try:
                os.replace(made, entry.path)
            except OSError:
                if not entry.path.exists():  # else another process finished first
                    raise
            _fsync_folder(entry.path.parent)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def used(self, entry: Entry) -> None:
        """Marks ``entry`` used now, so pruning keeps it (a read-only folder: nothing)."""
        with contextlib.suppress(OSError):
            os.utime(entry.path)

    def prune(self, entry: Entry) -> None:
        """Removes the other entries of ``entry``'s model unused for ``unused_days``, and
        temporary files and folders that writers left behind."""
        prefix = re.escape(entry.prefix)
        kept = re.compile(rf"{prefix}-[0-9a-f]{{16}}{re.escape(self.suffix)}")
        left = re.compile(rf"\.{prefix}-[0-9a-f]{{16}}{re.escape(self.suffix)}\.[a-z0-9_]+\.tmp")
        with contextlib.suppress(OSError), os.scandir(entry.path.parent) as found:
            for item in found:
                is_kept = kept.fullmatch(item.name) is not None
                if item.name == entry.path.name or not (is_kept or left.fullmatch(item.name)):
                    continue
                limit = self.unused_days * 86400 if is_kept else ABANDONED_S
                with contextlib.suppress(OSError):
                    if time.time() - item.stat(follow_symlinks=False).st_mtime > limit:
                        _remove(Path(item.path))
                        if is_kept:
                            log.info("Removed %s: unused for %d days.", item.path, self.unused_days)


def fsync_tree(path: Path) -> None:
    """Every file under ``path`` (or the file itself) on disk, and the folders that name them."""
    if path.is_dir():
        for child in path.iterdir():
            fsync_tree(child)
        _fsync_folder(path)
        return
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _fsync_folder(path: Path) -> None:
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _digest(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
