"""Load BLIP-2 and MarianMT once: pick the device and dtype, call ``from_pretrained``.

Nothing here runs at import time; :func:`load_models` is called by the engine's ``load()``.
A model that can't be found or loaded becomes one :class:`ModelLoadError` sentence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from transformers import (
    Blip2ForConditionalGeneration,
    Blip2Processor,
    MarianMTModel,
    MarianTokenizer,
)
from transformers.utils import logging as hf_logging

from .errors import ModelLoadError, SettingsError
from .settings import EngineSettings

__all__ = ["Models", "load_models", "resolve_device", "resolve_dtype"]

log = logging.getLogger(__name__)

_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


@dataclass(frozen=True)
class Models:
    """Everything the engine runs, already on ``device`` in ``dtype``."""

    processor: Blip2Processor
    captioner: Blip2ForConditionalGeneration
    tokenizer: MarianTokenizer
    translator: MarianMTModel
    device: torch.device
    dtype: torch.dtype
    # es->en, for questions asked in Spanish; absent where nobody asks questions (the CLI).
    question_tokenizer: MarianTokenizer | None = None
    question_translator: MarianMTModel | None = None


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


def resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    """``auto`` -> float16 on a GPU (as the notebook ran BLIP-2), float32 on the CPU."""
    if setting == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    dtype = _DTYPES[setting]
    if device.type == "cpu" and dtype == torch.float16:
        # Many CPU kernels lack float16; bfloat16 is the CPU's half precision.
        raise SettingsError("DTYPE='float16' needs a GPU; on the CPU use float32 or bfloat16.")
    return dtype


def load_models(settings: EngineSettings, *, questions: bool = True) -> Models:
    """Load the models from hub ids or local folders, onto one device.

    ``questions=False`` leaves out the es->en model that only Spanish questions need.
    """
    if not log.isEnabledFor(logging.DEBUG):
        quiet_transformers()
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    # One device for everything: the executor's thread owns it, and a 2.7B model in float16
    # (about 8 GB) fits one GPU. {"": device} is accelerate's map for "all of it there".
    placement: dict[str, Any] = {"dtype": dtype}
    if device.type == "cuda":
        placement["device_map"] = {"": device}

    processor = _load("caption", settings.caption_model, Blip2Processor.from_pretrained)
    captioner = _load(
        "caption", settings.caption_model, Blip2ForConditionalGeneration.from_pretrained, **placement
    )
    tokenizer = _load("translation", settings.translation_model, MarianTokenizer.from_pretrained)
    translator = _load("translation", settings.translation_model, MarianMTModel.from_pretrained, **placement)
    question_tokenizer = question_translator = None
    if questions:
        name = settings.question_translation_model
        question_tokenizer = _load("question translation", name, MarianTokenizer.from_pretrained)
        question_translator = _load("question translation", name, MarianMTModel.from_pretrained, **placement)
    for model in (captioner, translator, question_translator):
        if model is None:
            continue
        if device.type != "cuda":
            model.to(device)
        model.eval()
    log.info(
        "Models loaded on %s in %s: caption=%s translation=%s questions=%s",
        device,
        str(dtype).removeprefix("torch."),
        settings.caption_model,
        settings.translation_model,
        settings.question_translation_model if questions else "-",
    )
    return Models(
        processor, captioner, tokenizer, translator, device, dtype, question_tokenizer, question_translator
    )


def quiet_transformers() -> None:
    """No progress bars or advice from transformers: noise in a CLI's output or a bot's log."""
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _load(role: str, name: str, loader: Any, **kwargs: Any) -> Any:
    try:
        return loader(name, **kwargs)
    except (OSError, ValueError, KeyError, RuntimeError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"Could not load the {role} model {name!r}: {reason} "
            "(check the name or folder, and the network for hub ids)."
        ) from exc
