"""Describe pictures in English and other languages: BLIP-2 captions, MarianMT translations.

The model side of the project; it never imports ``telegram``. Start with :class:`Engine`.
The names that need torch (``Engine``, ``PreparedPicture``, ``load_image``) load on first use,
so a front end can import the errors, settings, tasks and :class:`Capabilities` without torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .capabilities import Capabilities
from .errors import (
    Busy,
    CaptioningError,
    InferenceError,
    InvalidImage,
    ModelLoadError,
    QueueFull,
    RequestTimeout,
    SettingsError,
    Stopped,
    TooManyQueued,
)
from .questions import Question
from .settings import EngineSettings
from .tasks import Answer, Describe, Read, Task, Translate, Translated

if TYPE_CHECKING:
    from .engine import Engine, PreparedPicture
    from .images import load_image
    from .text import clean_text

_LAZY = {
    "Engine": ".engine",
    "PreparedPicture": ".engine",
    "clean_text": ".text",
    "load_image": ".images",
}

__all__ = [
    "Answer",
    "Busy",
    "Capabilities",
    "CaptioningError",
    "Describe",
    "Engine",
    "EngineSettings",
    "InferenceError",
    "InvalidImage",
    "ModelLoadError",
    "PreparedPicture",
    "Question",
    "QueueFull",
    "Read",
    "RequestTimeout",
    "SettingsError",
    "Stopped",
    "Task",
    "TooManyQueued",
    "Translate",
    "Translated",
    "clean_text",
    "load_image",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
