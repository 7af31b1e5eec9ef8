"""int8 on the CPU (``QUANTIZE=int8``), and the int8 models kept between starts.

    int8/
      quantize.py   the route: each Linear layer read, quantized and placed, one at a time
      tensors.py    the checked safetensors reader
      format.py     the int8 model file: int8 weights, scales, every other tensor as it is
      __init__.py   load_int8: from QUANTIZED_CACHE_DIR, or quantized and kept there

Quantizing BLIP-2 OPT-2.7b takes about a minute; loading its int8 file, about 11 s (peak 5.0 GB
against 6.7 GB), and saving it adds 16 s to the first start (a 2-core CPU, full size).

The files are kept by :class:`~captioning.derived.DerivedFiles` (written whole, made once by
one process while the others wait, pruned by use, capped by ``INT8_CACHE_MAX_GB``, trusted
only when this account alone can write them), keyed by the model (a hub id, or a folder's
real path) and its class, its revision (a local folder's by its content, not its files'
times: see :func:`captioning.hub.revision`), the scheme and format, and the versions of
torch and transformers: another torch may round differently, another transformers name the
layers differently. A damaged file (cut short, garbled, another layout) is said in one line
and made again; so is a file another account could have written. A folder that isn't this
account's alone is said in one line, and the model is quantized without it.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from ..derived import DerivedFiles, Entry
from ..errors import first_line
from ..hub import revision
from .format import FORMAT, SCHEME, read_int8, save_int8
from .quantize import quantize_files, uses_torch_ao

__all__ = ["UNUSED_DAYS", "cache_entry", "load_int8"]

log = logging.getLogger(__name__)

# A model's file that no start has loaded or saved for this long is removed.
UNUSED_DAYS = 14


def load_int8(
    model_class: Any,
    folder: str | Path,
    *,
    cache: str | Path | None = None,
    name: str | None = None,
    max_bytes: int | None = None,
    owner: int | None = None,
) -> torch.nn.Module:
    """``model_class.from_pretrained(folder)`` in int8 (see :func:`~.quantize.quantize_files`).

    With ``cache`` (a folder), it is loaded from there when an earlier start saved it, else
    quantized and saved there; the files least recently used go past ``max_bytes``. ``name``:
    the model as the settings name it, for the log and the cache's key (default: the folder).
    ``owner``: the account the cache must belong to (default: this process's). Logs one line
    either way.
    """
    name = name or str(folder)
    if cache is None or not uses_torch_ao():  # no cache; or torchao's int8, which isn't saved here
        return _quantize(model_class, folder, name)
    files = _files(Path(cache), max_bytes=max_bytes, owner=owner)
    if not files.usable(name):
        return _quantize(model_class, folder, name)
    entry = _entry(Path(cache), model_class, name, folder)
    model, unreadable = _read(model_class, folder, files, entry, name)
    if model is None:
        with files.locked(entry, name) as locked:
            if locked:
                # Saved by another process while this one waited for the lock: loaded, not made.
                model, _ = _read(model_class, folder, files, entry, name, unless=unreadable)
            if model is None:
                model = _quantize(model_class, folder, name, (files, entry) if locked else None)
    files.prune(entry)
    files.evict(entry)
    return model


def cache_entry(
    cache: Path, model_class: Any, name: str, folder: str | Path, *, torch_version: str = torch.__version__
) -> Path:
    """The file in ``cache`` that holds the int8 ``model_class`` of ``name`` (found in ``folder``)."""
    return _entry(cache, model_class, name, folder, torch_version=torch_version).path


def _entry(
    cache: Path, model_class: Any, name: str, folder: str | Path, *, torch_version: str = torch.__version__
) -> Entry:
    import transformers

    local = Path(name).expanduser().is_dir()
    model = str(Path(name).expanduser().resolve()) if local else name
    key = {
        "revision": revision(folder),
        "scheme": SCHEME,
        "format": FORMAT,
        "torch": torch_version,
        "transformers": transformers.__version__,
    }
    readable = Path(model).name if local else model
    return _files(cache).entry(readable, {"model": model, "class": model_class.__name__}, key)


def _files(cache: Path, **options: Any) -> DerivedFiles:
    return DerivedFiles(
        cache, suffix=".safetensors", unused_days=UNUSED_DAYS, verbs=("quantizes", "quantizing"), **options
    )


def _read(
    model_class: Any,
    folder: str | Path,
    files: DerivedFiles,
    entry: Entry,
    name: str,
    *,
    unless: tuple[int, ...] | None = None,
) -> tuple[torch.nn.Module | None, tuple[int, ...] | None]:
    """(the model saved in ``entry``, None), or (None, the file that can't be read; None when
    there is none). ``unless``: a file found unreadable before, not tried (nor said) again."""
    try:
        found = _identity(entry.path)
    except OSError:
        return None, None
    if found == unless:
        return None, unless
    started = time.monotonic()
    try:
        problem = files.distrusted(entry)
        if problem:  # anyone could have put any weights there
            raise PermissionError(problem)
        model = read_int8(model_class, folder, entry.path, entry.key)
    except Exception as exc:  # truncated, garbled, another layout, another's: made again
        log.warning("Can't read %s (%s); quantizing %s again.", entry.path, first_line(exc, 200), name)
        return None, found
    files.used(entry)  # pruning goes by this time
    log.info("Loaded int8 %s from the cache in %.1f s.", name, time.monotonic() - started)
    return model, None


def _identity(path: Path) -> tuple[int, ...]:
    """Which file is at ``path``: a file renamed into its place is another one."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _quantize(
    model_class: Any, folder: str | Path, name: str, keep: tuple[DerivedFiles, Entry] | None = None
) -> torch.nn.Module:
    """Quantized from the model's files, and kept in the cache unless ``keep`` is None."""
    started = time.monotonic()
    model = quantize_files(model_class, folder)
    took = time.monotonic() - started
    if keep is None:
        log.info("Quantized %s to int8 in %.1f s.", name, took)
        return model
    files, entry = keep
    try:
        files.write(entry, lambda path: save_int8(model, path, entry.key))
    except Exception as exc:  # a full disk: the next start quantizes again
        log.warning(
            "Quantized %s to int8 in %.1f s, but can't save it in %s (%s); the next start quantizes again.",
            name,
            took,
            entry.path.parent,
            first_line(exc, 200),
        )
    else:
        log.info("Quantized %s to int8 in %.1f s; saved to %s", name, took, entry.path)
    return model
