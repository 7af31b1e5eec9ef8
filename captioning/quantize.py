"""int8 on the CPU (``QUANTIZE=int8``): every ``nn.Linear`` stored in int8, activations
quantized on the fly, for people who run the bot without a GPU.

Measured at full size on a 2-core CPU (docs/benchmarks.md): BLIP-2 OPT-2.7b and opus-mt-en-es
describe a picture about 5 times faster than in float32, in under half the memory.

* **The route.** ``torch.ao.quantization.quantize_dynamic`` (int8 weights with a scale per
  output channel, the x86 kernels built into torch). Per channel, not per tensor: on a layer
  with a few large rows, as language models have, a quarter of the error at the same speed.
  torchao's ``Int8DynamicActivationInt8WeightConfig`` is the maintained route, but in eager
  mode on the CPU it recomputes its weights' sums at every call, and measured slower than
  float32; it is used only where ``torch.ao.quantization`` is gone (a later torch).
* **Memory.** :func:`load_int8` never holds the float32 model: it builds the model without
  memory (on the meta device), then reads each Linear layer from the safetensors files,
  quantizes it and puts it in place, one at a time. The peak is about the int8 model plus
  one float32 layer.
* Embeddings, norms and BLIP-2's patch convolution stay float32; outputs on the tests'
  trained tiny models are the same as float32's.
* **The cache.** Quantizing BLIP-2 OPT-2.7b takes about a minute. With a cache folder
  (``QUANTIZED_CACHE_DIR``), the first start saves the int8 model there, and later starts load
  it instead: one file per model, named after the model and keyed by its revision (the hub
  commit, or the local files' sizes and times), the scheme, and the torch and transformers
  versions (another torch may round differently, another transformers name the layers
  differently). The file is safetensors: int8 weights with their per-channel scales, and every
  other tensor as it is (no pickle). Loading it builds the model on the meta device and packs
  a few layers at a time (one a thread: packing is most of the time), so its peak is about the
  int8 model's, and its outputs are exactly those of the model it was saved from. A file is
  written beside its place and renamed into it, so nobody reads half a file; one that can't be
  read is said in one line and made again. A new file of a model removes its older ones.
  Measured at full size on a 2-core CPU: BLIP-2 OPT-2.7b loads from its 4.3 GB file in 11 s
  (peak 5.0 GB) against 59 s to quantize it (6.7 GB); saving adds 16 s to the first start.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import glob
import hashlib
import json
import logging
import os
import re
import struct
import tempfile
import time
import warnings
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .hub import revision

__all__ = ["cache_entry", "load_int8", "quantize_int8"]

log = logging.getLogger(__name__)

_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
_CODES = {dtype: code for code, dtype in _DTYPES.items()}
# What a cache file holds; a new layout gets a new one, and so new files.
_FORMAT = "describe-bot int8 v1"
_SCHEME = "torch.ao dynamic int8, per-channel weights (per_channel_dynamic_qconfig)"
# A temporary file untouched for this long was left by a writer that died.
_ABANDONED_S = 3600


def quantize_int8(model: torch.nn.Module, *, skip: Collection[str] = ()) -> torch.nn.Module:
    """Quantize ``model``'s Linear layers to int8 in place (CPU, float32); returns it.

    ``skip``: qualified names of Linear layers to leave in float32.
    """
    if any(p.device.type != "cpu" for p in model.parameters()):
        raise ValueError("int8 dynamic quantization runs on the CPU only")
    model.eval()
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic
    except ImportError:  # a torch without it: torchao, if installed
        return _quantize_torchao(model, skip)
    spec: dict[Any, Any] = {torch.nn.Linear: per_channel_dynamic_qconfig}
    spec.update({name: None for name in skip})  # a name mapped to None is left alone
    with warnings.catch_warnings():
        # torch.ao.quantization says it is deprecated (in favour of torchao, slower here).
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*", category=UserWarning)
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def _quantize_torchao(model: torch.nn.Module, skip: Collection[str]) -> torch.nn.Module:
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    log.warning("torch.ao.quantization is missing: using torchao's int8, slower than torch.ao's on the CPU.")
    skipped = set(skip)
    quantize_(
        model,
        Int8DynamicActivationInt8WeightConfig(set_inductor_config=False),
        filter_fn=lambda module, name: isinstance(module, torch.nn.Linear) and name not in skipped,
    )
    return model


def load_int8(
    model_class: Any, folder: str | Path, *, cache: str | Path | None = None, name: str | None = None
) -> torch.nn.Module:
    """``model_class.from_pretrained(folder)`` quantized to int8 (see :func:`_quantize_files`).

    With ``cache`` (a folder), it is loaded from there when an earlier start saved it, else
    quantized and saved there. ``name``: the model as the settings name it, for the log and
    the cache's key (default: the folder). Logs one line either way.
    """
    name = name or str(folder)
    entry, key = _entry(Path(cache).expanduser(), model_class, name, folder) if cache else (None, "")
    if entry is not None and entry.exists():
        started = time.monotonic()
        try:
            model = _load_saved(model_class, folder, entry, key)
        except Exception as exc:  # truncated, garbled, another layout: made again below
            log.warning("Can't read %s (%s); quantizing %s again.", entry, _reason(exc), name)
        else:
            log.info("Loaded int8 %s from the cache in %.1f s.", name, time.monotonic() - started)
            return model
    started = time.monotonic()
    model = _quantize_files(model_class, folder)
    took = time.monotonic() - started
    if entry is None or not _torch_ao():  # no cache; or torchao's int8, which isn't saved here
        log.info("Quantized %s to int8 in %.1f s.", name, took)
        return model
    try:
        _save(model, entry, key)
    except Exception as exc:  # a full disk, a read-only folder: the next start quantizes again
        log.warning(
            "Quantized %s to int8 in %.1f s, but can't save it in %s (%s); the next start quantizes again.",
            name,
            took,
            entry.parent,
            _reason(exc),
        )
    else:
        log.info("Quantized %s to int8 in %.1f s; saved to %s", name, took, entry)
    return model


def _quantize_files(model_class: Any, folder: str | Path) -> torch.nn.Module:
    """``model_class.from_pretrained(folder)`` quantized to int8, without ever holding the
    float32 model: one Linear layer at a time, read, quantized and put in place. Needs the
    weights as safetensors; else (pickled weights) they are loaded whole, then quantized."""
    folder = Path(folder)
    if not list(folder.glob("*.safetensors")):
        model = model_class.from_pretrained(folder, dtype=torch.float32)
        return quantize_int8(model)
    model = _skeleton(model_class, folder)
    with _Safetensors(folder) as weights:
        tied = dict(getattr(model, "all_tied_weights_keys", {}) or {})  # target -> source
        linears = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
        linear_keys = {f"{name}.{part}" for name in linears for part in ("weight", "bias")}
        # Everything but the Linear layers first: embeddings, norms, the patch convolution (small).
        rest = {key: weights.get(key) for key in weights.index if key not in linear_keys}
        model.load_state_dict(rest, strict=False, assign=True)
        del rest
        for count, name in enumerate(linears, start=1):
            old = model.get_submodule(name)
            key = f"{name}.weight"
            if key not in weights and key not in tied:
                continue  # not in the checkpoint: made below, like the model makes it
            layer = torch.nn.Linear(
                old.in_features, old.out_features, bias=old.bias is not None, device="meta"
            )
            layer.weight = torch.nn.Parameter(
                weights.get(key if key in weights else tied[key]), requires_grad=False
            )
            if old.bias is not None:
                layer.bias = torch.nn.Parameter(weights.get(f"{name}.bias"), requires_grad=False)
            _set(model, name, quantize_int8(torch.nn.Sequential(layer))[0])
            del layer
            if count % 16 == 0:
                _malloc_trim()  # freed float32 layers back to the system: the peak stays low
    # What the checkpoint stores once is tied again (Marian's encoder and decoder embeddings).
    for target, source in tied.items():
        module_name, _, attribute = target.rpartition(".")
        module = model.get_submodule(module_name)
        current = getattr(module, attribute, None)
        if isinstance(current, torch.Tensor) and current.is_meta:
            setattr(module, attribute, model.get_parameter(source))
    # What the checkpoint doesn't hold (Marian's sinusoidal positions): the model makes it.
    for name, module in model.named_modules():
        own = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
        if any(tensor.is_meta for _, tensor in own):
            module.to_empty(device="cpu", recurse=False)
            with torch.no_grad():
                _owner(model, name)._init_weights(module)
    _malloc_trim()
    return _finish(model, folder, "not in the checkpoint")


def _skeleton(model_class: Any, folder: Path) -> torch.nn.Module:
    """The model ``folder``'s config describes, on the meta device: no memory for its weights."""
    config = model_class.config_class.from_pretrained(folder)
    with torch.device("meta"):
        model = model_class(config)
    return model.eval()


def _finish(model: torch.nn.Module, folder: Path, missing_from: str) -> torch.nn.Module:
    missing = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if missing:
        raise RuntimeError(f"{missing_from}: {', '.join(missing[:5])}")
    from transformers import GenerationConfig

    with contextlib.suppress(OSError):  # no generation_config.json: the config's defaults
        model.generation_config = GenerationConfig.from_pretrained(folder)
    gc.collect()
    return model


# -- the cache ---------------------------------------------------------------------------------


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
    # the files of one model share a prefix, so a new one replaces the older ones.
    readable = re.sub(r"[^\w.-]+", "--", Path(model).name if local else model).strip("-")[:80] or "model"
    return cache / f"{readable}-{_digest(which)[:8]}-{_digest(key)[:16]}.safetensors", key


def _digest(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _torch_ao() -> bool:
    """Whether int8 goes torch.ao's way (cached); torchao's tensors are not saved here."""
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return True


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
            # Unpacking is most of the time, on one core: a few layers at once, in order, and
            # no more of them unpacked than the threads (the rest of the model waits packed).
            threads = max(1, torch.get_num_threads())
            layers = list(linears.values())
            with ThreadPoolExecutor(threads) as pool:
                for start in range(0, len(layers), threads):
                    for parts in pool.map(_unpack, layers[start : start + threads]):
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
    _prune(path)


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


def _prune(path: Path) -> None:
    """Older files of the same model (another revision, torch or transformers: never read
    again), and temporary files their writers left behind."""
    prefix = path.name.rsplit("-", 1)[0]
    for other in path.parent.glob(f"{glob.escape(prefix)}-*.safetensors"):
        if other != path:
            with contextlib.suppress(OSError):
                other.unlink()
                log.info("Removed %s: an older int8 copy of the same model.", other)
    for left in path.parent.glob(f".{glob.escape(prefix)}-*.tmp"):
        with contextlib.suppress(OSError):
            if time.time() - left.stat().st_mtime > _ABANDONED_S:
                left.unlink()


def _load_saved(model_class: Any, folder: str | Path, path: Path, key: str) -> torch.nn.Module:
    """The model :func:`_save` saved in ``path``: built on the meta device, then its int8
    layers read and packed in their places, a few at a time, then the other tensors."""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    with _Safetensors(path, exact=True) as saved, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*", category=UserWarning)
        metadata = saved.metadata
        if metadata.get("format") != _FORMAT or metadata.get("key") != key:
            raise ValueError("it was saved for another model or version")
        linears, tied = json.loads(metadata["linears"]), json.loads(metadata["tied"])
        model = _skeleton(model_class, Path(folder))
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

        # Packing is most of the time, on one core: as many layers at once as torch has threads.
        pool = ThreadPoolExecutor(max(1, torch.get_num_threads()))
        try:
            layers = pool.map(read_layer, linears)
            for count, name in enumerate(linears, start=1):
                _set(model, name, next(layers))
                if count % 16 == 0:
                    _malloc_trim()
        finally:
            pool.shutdown(cancel_futures=True)
        parts = ("qweight", "qscales", "qzero_points", "bias")
        skipped = {f"{name}.{part}" for name in linears for part in parts}
        for name in saved.index:
            if name not in skipped:
                _put(model, name, saved.get(name))
    for alias, source in tied.items():
        module_name, _, attribute = source.rpartition(".")
        _put(model, alias, getattr(model.get_submodule(module_name), attribute))
    _malloc_trim()
    return _finish(model, Path(folder), "not in the cache file")


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


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


class _Safetensors:
    """Tensors out of safetensors files (a folder's, or one file), read one at a time with
    plain reads (not mapped: pages read once don't stay resident). ``get`` gives floating-point
    tensors in float32, as the model is built; with ``exact``, as they are stored. The files
    stay open until :meth:`close`: one replaced or removed meanwhile is still read whole."""

    def __init__(self, where: Path, *, exact: bool = False) -> None:
        self.exact = exact
        self.metadata: dict[str, str] = {}
        self.index: dict[str, tuple[BinaryIO, int, dict[str, Any]]] = {}
        self._files: list[BinaryIO] = []
        try:
            for path in [where] if where.is_file() else sorted(where.glob("*.safetensors")):
                file = path.open("rb")
                self._files.append(file)
                (length,) = struct.unpack("<Q", file.read(8))
                header = json.loads(file.read(length))
                self.metadata.update(header.pop("__metadata__", None) or {})
                ends = [info["data_offsets"][1] for info in header.values()]
                if os.fstat(file.fileno()).st_size < 8 + length + max(ends, default=0):
                    raise ValueError(f"{path.name} is shorter than its header says")
                for key, info in header.items():
                    self.index[key] = (file, 8 + length, info)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> _Safetensors:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for file in self._files:
            file.close()

    def __contains__(self, key: object) -> bool:
        return key in self.index

    def keys(self) -> list[str]:
        return list(self.index)

    def get(self, key: str) -> torch.Tensor:
        file, base, info = self.index[key]
        start, end = info["data_offsets"]
        tensor = torch.empty(info["shape"], dtype=_DTYPES[info["dtype"]])
        size = tensor.numel() * tensor.element_size()
        if end - start != size:
            raise ValueError(f"{key}: {end - start} bytes for {size}")
        if size:
            # pread: no shared file position, so threads may read at once.
            view = memoryview(tensor.view(-1).view(torch.uint8).numpy())
            done = 0
            while done < size:
                got = os.preadv(file.fileno(), [view[done:]], base + start + done)
                if not got:
                    raise ValueError(f"{Path(file.name).name} ends inside {key}")
                done += got
        if self.exact or not tensor.is_floating_point() or tensor.dtype == torch.float32:
            return tensor
        return tensor.float()


def _set(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _owner(model: torch.nn.Module, name: str) -> Any:
    """The innermost pretrained model above ``name``: its ``_init_weights`` knows the module."""
    from transformers import PreTrainedModel

    owner = model
    parts = name.split(".") if name else []
    for i in range(len(parts)):
        sub = model.get_submodule(".".join(parts[: i + 1]))
        if isinstance(sub, PreTrainedModel):
            owner = sub
    return owner


def _malloc_trim() -> None:
    """glibc keeps freed memory for reuse; give it back to the system (elsewhere: nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
