"""The int8 model file: int8 weights with their per-channel scales, and every other tensor as it
is, in safetensors (no pickle), read back with the checked :class:`~captioning.int8.tensors.Safetensors`.

Loading a file builds the model on the meta device and packs its layers, as many at once as
torch has threads, so its peak is about the int8 model's, and its outputs are exactly those of
the model it was saved from.
"""

from __future__ import annotations

import contextlib
import json
import struct
import warnings
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import torch

from .quantize import finish, malloc_trim, skeleton
from .tensors import Safetensors

__all__ = ["FORMAT", "SCHEME", "read_int8", "save_int8"]

# What a file holds; a new layout gets a new one, and so new files.
FORMAT = "describe-bot int8 v1"
SCHEME = "torch.ao dynamic int8, per-channel weights (per_channel_dynamic_qconfig)"

T = TypeVar("T")
R = TypeVar("R")


_CODES = {dtype: code for code, dtype in Safetensors.DTYPES.items()}


def save_int8(model: torch.nn.Module, path: Path, key: str) -> None:
    """``model`` into the new file ``path`` as safetensors: each int8 Linear as its int8 weight,
    per-channel scales and zero points, and bias; every other tensor as it is, a tied one once;
    one layer unpacked at a time. (:class:`~captioning.derived.DerivedFiles` gives the path
    beside the file's place, and renames the file into it once it is on disk.)"""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    linears = {name: m for name, m in model.named_modules() if isinstance(m, Int8Linear)}
    tensors, tied = _others(model)
    # Every shape is known before any weight is unpacked: the header is written first.
    plan = [entry for name, layer in linears.items() for entry in _layer_plan(name, layer)]
    plan += [(name, tensor.dtype, list(tensor.shape)) for name, tensor in tensors.items()]
    metadata = {"format": FORMAT, "key": key, "linears": json.dumps(list(linears)), "tied": json.dumps(tied)}
    header: dict[str, Any] = {"__metadata__": metadata}
    offset = 0
    for name, dtype, shape in plan:
        size = dtype.itemsize * int(torch.Size(shape).numel())
        header[name] = {"dtype": _CODES[dtype], "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the data 8-byte aligned, as safetensors writes it
    with open(path, "xb") as file:
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


def _layer_plan(name: str, layer: Any) -> list[tuple[str, torch.dtype, list[int]]]:
    """What one int8 Linear layer is saved as. A bias for every layer (zeros for none: asking a
    packed layer whether it has one unpacks it); the model built from the config knows which
    have one."""
    out, into = layer.out_features, layer.in_features
    return [
        (f"{name}.qweight", torch.int8, [out, into]),
        (f"{name}.qscales", torch.float64, [out]),
        (f"{name}.qzero_points", torch.int64, [out]),
        (f"{name}.bias", torch.float32, [out]),
    ]


def _others(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Every parameter and buffer that isn't in an int8 layer, a tied one once; and the tied
    ones' other names (alias -> the name it is saved under)."""
    tensors: dict[str, torch.Tensor] = {}
    tied: dict[str, str] = {}
    first: dict[int, str] = {}
    named = [*model.named_parameters(remove_duplicate=False), *model.named_buffers(remove_duplicate=False)]
    for name, tensor in named:
        if id(tensor) in first:
            tied[name] = first[id(tensor)]
            continue
        first[id(tensor)] = name
        tensors[name] = tensor
    return tensors, tied


def _unpack(layer: Any) -> list[torch.Tensor]:
    """One int8 Linear layer as it is saved: int8 weight, scales, zero points, bias (or zeros)."""
    weight, bias = layer._weight_bias()
    if weight.qscheme() != torch.per_channel_affine or weight.q_per_channel_axis() != 0:
        raise ValueError("a layer is not quantized per output channel")
    bias = torch.zeros(weight.shape[0]) if bias is None else bias
    return [weight.int_repr(), weight.q_per_channel_scales(), weight.q_per_channel_zero_points(), bias]


def _write(file: Any, tensor: torch.Tensor) -> None:
    data = tensor.detach().contiguous().view(-1)
    if data.numel():
        file.write(data.view(torch.uint8).numpy().data)


def read_int8(model_class: Any, folder: str | Path, path: Path, key: str) -> torch.nn.Module:
    """The model :func:`save_int8` saved in ``path``: built on the meta device, then its int8
    layers read and packed in their places, no more at once than torch has threads, then the
    other tensors."""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    with Safetensors(path, exact=True) as saved, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*", category=UserWarning)
        metadata = saved.metadata
        if metadata.get("format") != FORMAT or metadata.get("key") != key:
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


def _in_order(function: Callable[[T], R], items: Iterable[T], workers: int) -> Generator[R, None, None]:
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
