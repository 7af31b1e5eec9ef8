"""Load models once: pick the device and dtype, find the files, call ``from_pretrained``.

Nothing here runs at import time; the adapters' ``load()`` call it. A model that can't be
found, downloaded or loaded becomes one :class:`ModelLoadError` sentence, never a traceback.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers.utils import logging as hf_logging

from ..errors import ModelLoadError, SettingsError, first_line
from ..hub import locate

if TYPE_CHECKING:
    from ..settings import EngineSettings

__all__ = [
    "check_quantize",
    "config_of",
    "load_model",
    "load_pretrained",
    "place",
    "quiet_transformers",
    "resolve_device",
    "resolve_dtype",
]

log = logging.getLogger(__name__)

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def resolve_device(setting: str) -> torch.device:
    """``auto`` -> the first GPU if there is one, else the CPU; ``cuda`` needs a GPU."""
    if setting == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device("cuda:0" if setting == "cuda" else setting)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise SettingsError(f"DEVICE={setting!r}, but this machine has no usable CUDA GPU.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise SettingsError(f"DEVICE={setting!r}, but there are only {torch.cuda.device_count()} GPUs.")
    return device


def check_quantize(setting: str, device: torch.device, dtype: torch.dtype) -> bool:
    """Whether to load the models in int8 (QUANTIZE=int8): on the CPU, in float32, only."""
    if setting != "int8":
        return False
    if device.type != "cpu":
        raise SettingsError(
            "QUANTIZE=int8 runs on the CPU only; on a GPU, use DTYPE=float16 (the default there)."
        )
    if dtype != torch.float32:
        raise SettingsError("QUANTIZE=int8 quantizes float32 models: use DTYPE=float32 (or auto) with it.")
    return True


def resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    """``auto`` -> float16 on a GPU (as the notebook ran BLIP-2), float32 on the CPU."""
    if setting == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    dtype = _DTYPES[setting]
    if device.type == "cpu" and dtype == torch.float16:
        # Many CPU kernels lack float16; bfloat16 is the CPU's half precision.
        raise SettingsError("DTYPE='float16' needs a GPU; on the CPU use float32 or bfloat16.")
    return dtype


def place(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """``from_pretrained`` arguments that load the weights straight into ``dtype`` on ``device``."""
    placement: dict[str, Any] = {"dtype": dtype}
    if device.type == "cuda":
        # {"": device} is accelerate's map for "all of it there": one device for everything,
        # which the executor's thread owns (a 2.7B model in float16, about 8 GB, fits one GPU).
        placement["device_map"] = {"": device}
    return placement


def load_pretrained(
    loader: Any,
    name: str,
    *,
    role: str,
    setting: str,
    int8: bool = False,
    int8_cache: str | Path | None = None,
    int8_cache_max_bytes: int | None = None,
    **kwargs: Any,
) -> Any:
    """``loader.from_pretrained`` on the model's local files (see :mod:`captioning.hub`);
    with ``int8``, a model quantized as it loads (see :mod:`captioning.int8`), or loaded
    from ``int8_cache`` (a folder: ``EngineSettings.int8_cache``) where an earlier start saved
    it, keeping that folder under ``int8_cache_max_bytes``.

    Any failure is one :class:`ModelLoadError` that names the model and its setting.
    """
    if not log.isEnabledFor(logging.DEBUG):
        quiet_transformers()
    folder = locate(name, role=role, setting=setting)
    try:
        if int8:
            from ..int8 import load_int8

            return load_int8(loader, folder, cache=int8_cache, name=name, max_bytes=int8_cache_max_bytes)
        return loader.from_pretrained(folder, **kwargs)
    except Exception as exc:  # a tokenizer given the wrong folder raises TypeError, and so on
        raise ModelLoadError(
            f"Could not load the {role} model {name!r} ({setting}): {first_line(exc, 300)}"
        ) from exc


def load_model(
    loader: Any,
    name: str,
    settings: EngineSettings,
    device: torch.device,
    dtype: torch.dtype,
    *,
    role: str,
    setting: str,
) -> Any:
    """A model (not its tokenizer or processor) by :func:`load_pretrained`: in int8 where
    ``settings.quantize`` says so (through ``settings.int8_cache``), else in ``dtype``, placed
    on ``device`` and ready for inference (``.eval()``)."""
    model = load_pretrained(
        loader,
        name,
        role=role,
        setting=setting,
        int8=settings.quantize == "int8",
        int8_cache=settings.int8_cache,
        int8_cache_max_bytes=int(settings.int8_cache_max_gb * 1e9),
        # transformers (5.x, with `kernels` installed, as it is by default) would swap layers
        # for "hub kernels" it downloads at load time on a GPU: code that isn't in the pinned
        # weights, and the network at every start. Without network it refuses to load at all.
        use_kernels=False,
        **place(device, dtype),
    )
    return model.to(device).eval()


def quiet_transformers() -> None:
    """No advice, warnings or loading bars from transformers: noise in a CLI's output or a
    bot's log. (The hub's download bars are :mod:`captioning.hub`'s to show on a terminal.)"""
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def config_of(folder: str | Path) -> dict[str, Any]:
    """The model's ``config.json``, as it is: its ``model_type`` says which adapter loads it.
    A folder without one is a :class:`ModelLoadError` that says so."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{folder} has no readable config.json ({first_line(exc, 200)})") from exc
    if not isinstance(config, dict):
        raise ModelLoadError(f"{path} is not a model's config")
    return config
