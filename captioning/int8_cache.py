"""The int8 models kept between starts (``QUANTIZED_CACHE_DIR``): :func:`load_int8` loads one
from there, or quantizes it (:mod:`captioning.quantize`) and saves it there.

Quantizing BLIP-2 OPT-2.7b takes about a minute; loading its int8 file, about 11 s.

* **Keyed.** One file per model, named after the model and keyed by its revision (the hub
  commit, or the local files' sizes and times), the scheme, and the torch and transformers
  versions (another torch may round differently, another transformers name the layers
  differently): ``<model>-<8 hex>-<16 hex>.safetensors``, the first digest the model and its
  class, the second the rest of the key.
* **The file** is safetensors: int8 weights with their per-channel scales, and every other
  tensor as it is (no pickle). Loading it builds the model on the meta device and packs its
  layers, as many at once as torch has threads, so its peak is about the int8 model's, and
  its outputs are exactly those of the model it was saved from.
* **Safe to share.** A file is written beside its place and renamed into it, so nobody reads
  half a file, and a file in place is read without any lock. Making one takes
  ``<model>-<8 hex>.lock`` (``flock``): replicas starting together on one machine quantize
  once, and the others wait, then load that file. A lock that can't be taken (a read-only
  folder) is one warning, and the model is quantized without saving it.
* **Pruned by use.** Loading a file marks it used (its modification time). A model's files
  that no start has loaded or saved for :data:`UNUSED_DAYS` (another revision, torch or
  transformers, since gone) are removed; the ones in use stay, whichever installation uses
  them. Only files named as above are ever removed. The lock files stay (a few bytes each).
* **Damaged files** (cut short, garbled, another layout) are said in one line and made again.

Measured at full size on a 2-core CPU: BLIP-2 OPT-2.7b loads from its 4.3 GB file in 11 s
(peak 5.0 GB) against 59 s to quantize it (6.7 GB); saving adds 16 s to the first start.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import struct
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import torch

from .errors import first_line
from .hub import revision
from .quantize import Safetensors, finish, malloc_trim, quantize_files, skeleton, uses_torch_ao

__all__ = ["UNUSED_DAYS", "cache_entry", "load_int8"]

log = logging.getLogger(__name__)

_CODES = {dtype: code for code, dtype in Safetensors.DTYPES.items()}
# What a cache file holds; a new layout gets a new one, and so new files.
_FORMAT = "describe-bot int8 v1"
_SCHEME = "torch.ao dynamic int8, per-channel weights (per_channel_dynamic_qconfig)"
# A model's file that no start has loaded or saved for this long is removed.
UNUSED_DAYS = 14
# A temporary file untouched for this long was left by a writer that died.
_ABANDONED_S = 3600

T = TypeVar("T")
R = TypeVar("R")


def load_int8(
    model_class: Any, folder: str | Path, *, cache: str | Path | None = None, name: str | None = None
) -> torch.nn.Module:
    """``model_class.from_pretrained(folder)`` in int8 (see :func:`~captioning.quantize.quantize_files`).

    With ``cache`` (a folder), it is loaded from there when an earlier start saved it, else
    quantized and saved there. ``name``: the model as the settings name it, for the log and
    the cache's key (default: the folder). Logs one line either way.
    """
    name = name or str(folder)
    if cache is None or not uses_torch_ao():  # no cache; or torchao's int8, which isn't saved here
        return _quantize(model_class, folder, name)
    entry, key = _entry(Path(cache).expanduser(), model_class, name, folder)
    model, unreadable = _read(model_class, folder, entry, key, name)
    if model is None:
        with _locked(entry, name) as locked:
            if locked:
                # Saved by another process while this one waited for the lock: loaded, not made.
                model, _ = _read(model_class, folder, entry, key, name, unless=unreadable)
            if model is None:
                model = _quantize(model_class, folder, name, entry if locked else None, key)
    _prune(entry)
    return model


def _read(
    model_class: Any,
    folder: str | Path,
    entry: Path,
    key: str,
    name: str,
    *,
    unless: tuple[int, ...] | None = None,
) -> tuple[torch.nn.Module | None, tuple[int, ...] | None]:
    """(the model saved in ``entry``, None), or (None, the file that can't be read; None when
    there is none). ``unless``: a file found unreadable before, not tried (nor said) again."""
    try:
        found = _identity(entry)
    except OSError:
        return None, None
    if found == unless:
        return None, unless
    started = time.monotonic()
    try:
        model = _load_saved(model_class, folder, entry, key)
    except Exception as exc:  # truncated, garbled, another layout: made again
        log.warning("Can't read %s (%s); quantizing %s again.", entry, first_line(exc, 200), name)
        return None, found
    with contextlib.suppress(OSError):  # in use: _prune goes by this time (a read-only folder: none)
        os.utime(entry)
    log.info("Loaded int8 %s from the cache in %.1f s.", name, time.monotonic() - started)
    return model, None


def _identity(path: Path) -> tuple[int, ...]:
    """Which file is at ``path``: a file renamed into its place is another one."""
    stat = path.stat()
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def _quantize(
    model_class: Any, folder: str | Path, name: str, entry: Path | None = None, key: str = ""
) -> torch.nn.Module:
    """Quantized from the model's files, and saved in ``entry`` unless it is None."""
    started = time.monotonic()
    model = quantize_files(model_class, folder)
    took = time.monotonic() - started
    if entry is None:
        log.info("Quantized %s to int8 in %.1f s.", name, took)
        return model
    try:
        _save(model, entry, key)
    except Exception as exc:  # a full disk: the next start quantizes again
        log.warning(
            "Quantized %s to int8 in %.1f s, but can't save it in %s (%s); the next start quantizes again.",
            name,
            took,
            entry.parent,
            first_line(exc, 200),
        )
    else:
        log.info("Quantized %s to int8 in %.1f s; saved to %s", name, took, entry)
    return model


@contextlib.contextmanager
def _locked(entry: Path, name: str) -> Iterator[bool]:
    """Holds the model's lock file (beside ``entry``) for the ``with`` block: one process at a
    time makes a model's file. Gives False, after one warning, where the lock can't be taken.

    The lock file is never removed: one removed while another process waits on it would let
    a third lock a new file of the same name, and two would write at once."""
    path = entry.with_name(f"{_prefix(entry)}.lock")
    with contextlib.ExitStack() as held:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            held.callback(os.close, handle)  # closed, the lock is let go (also by a process that dies)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log.info("Waiting while another process quantizes %s (it holds %s).", name, path)
                fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError as exc:  # a read-only folder, a file system without locks
            log.warning(
                "Can't lock %s (%s); quantizing %s without saving it.", path, first_line(exc, 200), name
            )
            locked = False
        else:
            locked = True
        yield locked


def cache_entry(
    cache: Path, model_class: Any, name: str, folder: str | Path, *, torch_version: str = torch.__version__
) -> Path:
    """The file in ``cache`` that holds the int8 ``model_class`` of ``name`` (found in ``folder``)."""
    return _entry(cache, model_class, name, folder, torch_version=torch_version)[0]


def _entry(
    cache: Path, model_class: Any, name: str, folder: str | Path, *, torch_version: str = torch.__version__
) -> tuple[Path, str]:
    """The file, and the key it is saved with: the model (a hub id, or a folder's real path),
    its revision, the scheme, and the versions of torch and transformers."""
    import transformers

    local = Path(name).expanduser().is_dir()
    model = str(Path(name).expanduser().resolve()) if local else name
    which = {"model": model, "class": model_class.__name__}
    key = json.dumps(
        {
            **which,
            "revision": revision(folder),
            "scheme": _SCHEME,
            "format": _FORMAT,
            "torch": torch_version,
            "transformers": transformers.__version__,
        },
        sort_keys=True,
    )
    # Named for people (the model), then for the model's identity, then for the rest of the key:
    # the files of one model share a prefix, and its lock.
    readable = re.sub(r"[^\w.-]+", "--", Path(model).name if local else model).strip("-")[:80] or "model"
    return cache / f"{readable}-{_digest(which)[:8]}-{_digest(key)[:16]}.safetensors", key


def _prefix(entry: Path) -> str:
    """What the files of ``entry``'s model share: ``<model>-<8 hex>``."""
    return entry.name.removesuffix(".safetensors").rsplit("-", 1)[0]


def _digest(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _prune(entry: Path) -> None:
    """The files of ``entry``'s model that no start has used for :data:`UNUSED_DAYS` (another
    revision, torch or transformers, since gone), and temporary files their writers left
    behind. Nothing but the names this module writes can match."""
    prefix = re.escape(_prefix(entry))
    saved = re.compile(rf"{prefix}-[0-9a-f]{{16}}\.safetensors")
    # tempfile.mkstemp's names: .<the file's stem>.<letters, digits, _>.tmp
    left = re.compile(rf"\.{prefix}-[0-9a-f]{{16}}\.[a-z0-9_]+\.tmp")
    with contextlib.suppress(OSError), os.scandir(entry.parent) as files:
        for file in files:
            if file.name == entry.name:
                continue
            is_saved = saved.fullmatch(file.name) is not None
            if not is_saved and left.fullmatch(file.name) is None:
                continue
            limit = UNUSED_DAYS * 86400 if is_saved else _ABANDONED_S
            with contextlib.suppress(OSError):
                if time.time() - file.stat(follow_symlinks=False).st_mtime > limit:
                    os.unlink(file.path)
                    if is_saved:
                        log.info("Removed %s: unused for %d days.", file.path, UNUSED_DAYS)


def _save(model: torch.nn.Module, path: Path, key: str) -> None:
    """``model`` into ``path`` as safetensors: each int8 Linear as its int8 weight, per-channel
    scales and zero points, and bias; every other tensor as it is, a tied one once. Written one
    layer at a time into a temporary file beside ``path``, then renamed into place."""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    linears = {name: m for name, m in model.named_modules() if isinstance(m, Int8Linear)}
    # Every shape is known before any weight is unpacked: the header is written first.
    plan: list[tuple[str, torch.dtype, list[int]]] = []
    for name, layer in linears.items():
        out, into = layer.out_features, layer.in_features
        # A bias for every layer (zeros for none: asking a packed layer whether it has one
        # unpacks it); the model built from the config knows which have one.
        plan += [
            (f"{name}.qweight", torch.int8, [out, into]),
            (f"{name}.qscales", torch.float64, [out]),
            (f"{name}.qzero_points", torch.int64, [out]),
            (f"{name}.bias", torch.float32, [out]),
        ]
    tensors: dict[str, torch.Tensor] = {}
    tied: dict[str, str] = {}  # alias -> the name it is saved under
    first: dict[int, str] = {}
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    for name, tensor in named:
        if id(tensor) in first:
            tied[name] = first[id(tensor)]
            continue
        first[id(tensor)] = name
        tensors[name] = tensor
        plan.append((name, tensor.dtype, list(tensor.shape)))
    header: dict[str, Any] = {
        "__metadata__": {
            "format": _FORMAT,
            "key": key,
            "linears": json.dumps(list(linears)),
            "tied": json.dumps(tied),
        }
    }
    offset = 0
    for name, dtype, shape in plan:
        size = dtype.itemsize * int(torch.Size(shape).numel())
        header[name] = {"dtype": _CODES[dtype], "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the data 8-byte aligned, as safetensors writes it
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(struct.pack("<Q", len(text)) + text)
            # Unpacking is most of the time: no more layers unpacked at once than the threads
            # (the rest of the model waits packed).
            with contextlib.closing(_in_order(_unpack, linears.values(), _threads())) as layers:
                for parts in layers:
                    for part in parts:
                        _write(file, part)
            for tensor in tensors.values():
                _write(file, tensor)
            if file.tell() != 8 + len(text) + offset:
                raise RuntimeError("the tensors' sizes changed while they were written")
            file.flush()
            os.fsync(file.fileno())  # on disk before it has its name: no half file after a crash
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _unpack(layer: torch.nn.Module) -> list[torch.Tensor]:
    """One int8 Linear layer as it is saved: int8 weight, scales, zero points, bias (or zeros)."""
    weight, bias = layer._weight_bias()
    if weight.qscheme() != torch.per_channel_affine or weight.q_per_channel_axis() != 0:
        raise ValueError("a layer is not quantized per output channel")
    bias = torch.zeros(weight.shape[0]) if bias is None else bias
    return [weight.int_repr(), weight.q_per_channel_scales(), weight.q_per_channel_zero_points(), bias]


def _write(file: Any, tensor: torch.Tensor) -> None:
    data = tensor.detach().contiguous().view(-1)
    if data.numel():
        file.write(memoryview(data.view(torch.uint8).numpy()))


def _load_saved(model_class: Any, folder: str | Path, path: Path, key: str) -> torch.nn.Module:
    """The model :func:`_save` saved in ``path``: built on the meta device, then its int8
    layers read and packed in their places, no more at once than torch has threads, then the
    other tensors."""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    with Safetensors(path, exact=True) as saved, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*", category=UserWarning)
        metadata = saved.metadata
        if metadata.get("format") != _FORMAT or metadata.get("key") != key:
            raise ValueError("it was saved for another model or version")
        linears, tied = json.loads(metadata["linears"]), json.loads(metadata["tied"])
        model = skeleton(model_class, Path(folder))
        shapes, biased = {}, set()
        for name in linears:
            old = model.get_submodule(name)
            if not isinstance(old, torch.nn.Linear):
                raise ValueError(f"{name} is not a Linear layer of the model")
            shapes[name] = (old.out_features, old.in_features)
            if old.bias is not None:
                biased.add(name)

        def read_layer(name: str) -> torch.nn.Module:
            weight = torch._make_per_channel_quantized_tensor(
                saved.get(f"{name}.qweight"),
                saved.get(f"{name}.qscales"),
                saved.get(f"{name}.qzero_points"),
                0,
            )
            if tuple(weight.shape) != shapes[name]:
                raise ValueError(f"{name} has the wrong shape")
            bias = saved.get(f"{name}.bias") if name in biased else None
            # Made 1 x 1, then given its weight: the constructor would pack an empty weight first.
            built = Int8Linear(1, 1, bias_=False, dtype=torch.qint8)
            built.out_features, built.in_features = shapes[name]
            built.set_weight_bias(weight, bias)
            return built

        # Packing is most of the time, on one core a layer: a layer a thread.
        with contextlib.closing(_in_order(read_layer, linears, _threads())) as layers:
            for count, (name, layer) in enumerate(zip(linears, layers, strict=True), start=1):
                model.set_submodule(name, layer)
                if count % 16 == 0:
                    malloc_trim()
        parts = ("qweight", "qscales", "qzero_points", "bias")
        skipped = {f"{name}.{part}" for name in linears for part in parts}
        for name in saved.index:
            if name not in skipped:
                _put(model, name, saved.get(name))
    for alias, source in tied.items():
        module_name, _, attribute = source.rpartition(".")
        _put(model, alias, getattr(model.get_submodule(module_name), attribute))
    malloc_trim()
    return finish(model, Path(folder), "not in the cache file")


def _threads() -> int:
    return max(1, torch.get_num_threads())


def _in_order(function: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """``function`` of each item, in order, on ``workers`` threads, with no more than
    ``workers`` items taken ahead of the one given back: the others wait as they are."""
    with ThreadPoolExecutor(workers) as pool:
        ahead: deque[Future[R]] = deque()
        try:
            for item in items:
                ahead.append(pool.submit(function, item))
                if len(ahead) == workers:
                    yield ahead.popleft().result()
            while ahead:
                yield ahead.popleft().result()
        finally:
            for future in ahead:
                future.cancel()


def _put(model: torch.nn.Module, name: str, tensor: torch.Tensor) -> None:
    """``tensor`` in the place of the parameter or buffer ``name`` (on the meta device)."""
    module_name, _, attribute = name.rpartition(".")
    module = model.get_submodule(module_name)
    if attribute in module._parameters:
        if not isinstance(tensor, torch.nn.Parameter):
            current = module._parameters[attribute]
            tensor = torch.nn.Parameter(tensor, requires_grad=current is not None and current.requires_grad)
        module._parameters[attribute] = tensor
    elif attribute in module._buffers:
        module._buffers[attribute] = tensor
    else:
        raise ValueError(f"{name} is not a tensor of the model")
