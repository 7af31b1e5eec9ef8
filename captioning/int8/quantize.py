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
* **Memory.** :func:`quantize_files` never holds the float32 model: it builds the model without
  memory (on the meta device), then reads each Linear layer from the safetensors files,
  quantizes it and puts it in place, one at a time. The peak is about the int8 model plus
  one float32 layer.
* Embeddings, norms and BLIP-2's patch convolution stay float32; outputs on the tests'
  trained tiny models are the same as float32's.
* **The files** are read by :class:`~captioning.int8.format.Safetensors`, a plain reader
  that checks every header against the file's size before it allocates anything a header says.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Any, cast

import torch

from .tensors import Safetensors

__all__ = [
    "finish",
    "malloc_trim",
    "quantize_files",
    "quantize_int8",
    "skeleton",
    "uses_torch_ao",
]

log = logging.getLogger(__name__)


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


def uses_torch_ao() -> bool:
    """Whether :func:`quantize_int8` goes torch.ao's way (else torchao's, a later torch)."""
    try:
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic  # noqa: F401
    except ImportError:
        return False
    return True


def quantize_files(model_class: Any, folder: str | Path) -> torch.nn.Module:
    """``model_class.from_pretrained(folder)`` quantized to int8, without ever holding the
    float32 model: one Linear layer at a time, read, quantized and put in place. Needs the
    weights as safetensors; else (pickled weights) they are loaded whole, then quantized."""
    folder = Path(folder)
    if not list(folder.glob("*.safetensors")):
        model = model_class.from_pretrained(folder, dtype=torch.float32, use_kernels=False)  # see load_model
        return quantize_int8(model)
    model = skeleton(model_class, folder)
    with Safetensors(folder) as weights:
        tied = dict(getattr(model, "all_tied_weights_keys", {}) or {})  # target -> source
        linears = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
        linear_keys = {f"{name}.{part}" for name in linears for part in ("weight", "bias")}
        # Everything but the Linear layers first: embeddings, norms, the patch convolution (small).
        rest = {key: weights.get(key) for key in weights.index if key not in linear_keys}
        model.load_state_dict(rest, strict=False, assign=True)
        del rest
        for count, name in enumerate(linears, start=1):
            old = model.get_submodule(name)
            assert isinstance(old, torch.nn.Linear)  # found as one above
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
            packed = torch.nn.Sequential(layer)
            quantize_int8(packed)  # in place: the layer in it is replaced by its int8 one
            model.set_submodule(name, packed[0])
            del layer
            if count % 16 == 0:
                malloc_trim()  # freed float32 layers back to the system: the peak stays low
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
    malloc_trim()
    return finish(model, folder, "not in the checkpoint")


def skeleton(model_class: Any, folder: Path) -> torch.nn.Module:
    """The model ``folder``'s config describes, on the meta device: no memory for its weights."""
    config = model_class.config_class.from_pretrained(folder)
    with torch.device("meta"):
        model = model_class(config)
    return model.eval()


def finish(model: torch.nn.Module, folder: Path, missing_from: str) -> torch.nn.Module:
    """``model`` with its generation config, once no tensor is left on the meta device (else a
    RuntimeError that names them, after ``missing_from``)."""
    missing = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if missing:
        raise RuntimeError(f"{missing_from}: {', '.join(missing[:5])}")
    from transformers import GenerationConfig

    with contextlib.suppress(OSError):  # no generation_config.json: the config's defaults
        cast(Any, model).generation_config = GenerationConfig.from_pretrained(folder)
    gc.collect()
    return model


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


def malloc_trim() -> None:
    """glibc keeps freed memory for reuse; give it back to the system (elsewhere: nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
