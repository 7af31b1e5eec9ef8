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
* **Capped.** With ``max_bytes``, the entries least recently used go, whatever their model,
  until the folder holds no more than that (never the entry just used).
* **Trusted as OpenSSH trusts ~/.ssh.** An entry is read without any check of its contents (a
  hash would cost a full read of 4 GB), so what is trusted is who can write it: the folder
  and every entry must belong to the account that runs the service and be writable by no
  one else. A folder that isn't is refused in one line, and the caller makes its model
  without keeping it; an entry that isn't is one line, removed and made again. The lock is
  opened without following a link (``O_NOFOLLOW``), and what is written is writable by its
  owner only. So the folder is shared between the processes of one service account (its
  replicas, its restarts), not between accounts.
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

__all__ = ["DerivedFiles", "Entry", "fsync_tree", "size_of"]

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
        max_bytes: int | None = None,
        owner: int | None = None,
    ) -> None:
        self.folder, self.suffix, self.unused_days = Path(folder).expanduser(), suffix, unused_days
        # How the log says what is done to make an entry: ("quantizes", "quantizing"), say.
        self.verbs = verbs
        self.max_bytes = max_bytes
        # The account the folder and its entries must belong to: this process's.
        self.owner = os.geteuid() if owner is None else owner

    def usable(self, what: str) -> bool:
        """Whether the folder may be used: made (private) if missing, and belonging to
        :attr:`owner` and writable by no one else. Else False, after one warning (``what``:
        the model, for the log)."""
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            problem = _distrust(self.folder.stat(), self.owner)
        except OSError as exc:
            problem = first_line(exc, 200)
        if problem:
            log.warning("Not using %s: %s; %s %s without it.", self.folder, problem, self.verbs[1], what)
        return not problem

    def distrusted(self, entry: Entry) -> str | None:
        """Why ``entry`` (in place) can't be trusted, or None: it, or a file in it, belongs to
        another account or can be written by one."""
        paths = [entry.path]
        if entry.path.is_dir() and not entry.path.is_symlink():
            paths += sorted(entry.path.rglob("*"))
        for path in paths:
            problem = _distrust(path.lstat(), self.owner)
            if problem:
                return problem if path == entry.path else f"{path.relative_to(entry.path)} in it: {problem}"
        return None

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
                # Never through a link: one planted there would make this create its target.
                handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
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
            _owner_writes_only(made)
            fsync_tree(made)
            try:
                os.replace(made, entry.path)
            except OSError:
                if not entry.path.exists():  # else another process finished first
                    raise
            _fsync_folder(entry.path.parent)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)

    def discard(self, entry: Entry) -> None:
        """Removes ``entry`` (a damaged one, under its lock), so that it can be made again."""
        with contextlib.suppress(FileNotFoundError):
            _remove(entry.path)

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

    def evict(self, keep: Entry) -> None:
        """The entries least recently used removed until the folder holds no more than
        ``max_bytes`` (``keep`` stays, whatever its size)."""
        if self.max_bytes is None:
            return
        ours = re.compile(rf".+-[0-9a-f]{{8}}-[0-9a-f]{{16}}{re.escape(self.suffix)}")
        found: list[tuple[float, int, Path]] = []
        with contextlib.suppress(OSError), os.scandir(self.folder) as items:
            for item in items:
                if ours.fullmatch(item.name) and not item.is_symlink():
                    with contextlib.suppress(OSError):
                        path = Path(item.path)
                        found.append((item.stat().st_mtime, size_of(path), path))
        total = sum(size for _, size, _ in found)
        for _, size, path in sorted(found):  # the least recently used first
            if total <= self.max_bytes:
                break
            if path == keep.path:
                continue
            with contextlib.suppress(OSError):
                _remove(path)
                total -= size
                log.info("Removed %s: the cache holds at most %.1f GB.", path, self.max_bytes / 1e9)


def size_of(path: Path) -> int:
    """Bytes in the file ``path``, or in the files of the folder ``path``."""
    if path.is_dir() and not path.is_symlink():
        return sum(child.lstat().st_size for child in path.rglob("*") if child.is_file())
    return path.lstat().st_size


def _distrust(stat: os.stat_result, owner: int) -> str | None:
    """Why a file or folder with ``stat`` can't be trusted by ``owner``, or None."""
    import stat as kinds

    if kinds.S_ISLNK(stat.st_mode):
        return "it is a link"
    if stat.st_uid != owner:
        return f"it belongs to uid {stat.st_uid}, not to this account (uid {owner})"
    if stat.st_mode & 0o022:
        return f"other users can write it (mode {stat.st_mode & 0o777:o})"
    return None


def _owner_writes_only(path: Path) -> None:
    """``path`` and what is in it writable by their owner only, whatever the umask."""
    for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
        mode = item.lstat().st_mode
        if mode & 0o022:
            item.chmod(mode & 0o7755)


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
