"""Model adapters, one per model family, all of one shape (:class:`~.base.PictureModel`).

    models/
      base.py       the adapter's shape
      loading.py    device, dtype, from_pretrained, int8; a model's config
      blip2.py      BLIP-2: short and detailed captions, answers to questions
      chat.py       chat vision-language models (SmolVLM, Qwen2-VL, ...): the same, told in words
      florence.py   Florence-2: the text in a picture, where things are, BLIP-2's long description

:func:`load_adapter` finds a model's files, reads its ``config.json``, and gives it to the
first adapter of the setting's role that supports it; a model no adapter supports is one line
that names the model and the families that are. Adapters are found in this package by
themselves (each module's ``ADAPTERS``): a new family is one new module.
"""

from __future__ import annotations

import pkgutil
from functools import cache
from importlib import import_module
from typing import TYPE_CHECKING

from ..errors import ModelLoadError
from ..hub import locate
from .base import PictureModel
from .loading import config_of

if TYPE_CHECKING:
    import torch

    from ..settings import EngineSettings

__all__ = ["SETTINGS", "PictureModel", "adapters", "load_adapter"]

# An adapter's role -> the setting that names its model.
SETTINGS = {"caption": "CAPTION_MODEL", "reading": "OCR_MODEL"}
_NOT_ADAPTERS = {"base", "loading"}


@cache
def adapters() -> tuple[type[PictureModel], ...]:
    """Every adapter in this package; a family's own adapter before a generic one."""
    found: list[type[PictureModel]] = []
    for module in sorted(info.name for info in pkgutil.iter_modules(__path__)):
        if module not in _NOT_ADAPTERS:
            found += getattr(import_module(f".{module}", __name__), "ADAPTERS", ())
    return tuple(sorted(found, key=lambda adapter: getattr(adapter, "generic", False)))


def load_adapter(
    role: str, name: str, settings: EngineSettings, device: torch.device, dtype: torch.dtype
) -> PictureModel:
    """The model ``name`` (a hub id or a folder) for ``role``, loaded by its family's adapter."""
    setting = SETTINGS[role]
    folder = locate(name, role=role, setting=setting)
    config = config_of(folder)
    candidates = [adapter for adapter in adapters() if role in adapter.roles]
    for adapter in candidates:
        if adapter.supports(config):
            return adapter.load(name, folder, settings, device, dtype, role=role, setting=setting)
    model_type = config.get("model_type") or "unknown"
    families = ", ".join(adapter.family for adapter in candidates)
    raise ModelLoadError(
        f"The {role} model {name!r} ({setting}) is of type {model_type!r}, which this version "
        f"can't use there; {setting} takes {families}."
    )
