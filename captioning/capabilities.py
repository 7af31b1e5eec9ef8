"""What a backend can do, as one frozen value: made once by the engine, passed on unchanged.

The engine makes its :class:`Capabilities` from the models it loaded; the executor, the Ray
application (``info()``), its client (:class:`~captioning.serving.ray_backend.RayBackend`)
and the bot pass that same value on, and read it, instead of each naming the engine's
properties again. Plain data: importable without torch, and sent over Ray as a dict.

    Capabilities(
        languages=("en", "es"),             # descriptions and answers: English and each translation
        question_languages=("en", "es"),    # questions: English and each language with a question model
        sizes={"describe": 224, ..., "read": 768, "translate": 0},   # task kind -> input, pixels a side
        batch_size=8,                       # pictures per forward pass
    )

A task kind missing from ``sizes`` can't be done by this backend; a size of 0 is a task on no
picture (translating a text read before).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Capabilities"]


@dataclass(frozen=True)
class Capabilities:
    """The languages, the question languages, the task kinds and each one's input size."""

    languages: tuple[str, ...] = ("en",)
    question_languages: tuple[str, ...] = ("en",)
    sizes: Mapping[str, int] = field(default_factory=dict)
    batch_size: int = 16

    def __post_init__(self) -> None:
        # Read-only, like the rest: nobody along the way may add a kind.
        object.__setattr__(self, "sizes", MappingProxyType(dict(self.sizes)))

    def __reduce__(self) -> tuple[Any, ...]:  # a read-only mapping doesn't pickle; its dict does
        return (Capabilities.from_dict, (self.as_dict(),))

    @property
    def kinds(self) -> tuple[str, ...]:
        """The task kinds this backend can do."""
        return tuple(self.sizes)

    def can(self, kind: str) -> bool:
        """Whether tasks of ``kind`` (``describe``, ``read``, ...) can be done."""
        return kind in self.sizes

    def input_size(self, kind: str) -> int:
        """The pixels a side a picture for ``kind`` is looked at (0: a task on no picture); the
        bot fetches a photo size at least this large."""
        try:
            return self.sizes[kind]
        except KeyError:
            raise ValueError(f"this backend can't do {kind!r} (it does {', '.join(self.sizes)})") from None

    def as_dict(self) -> dict[str, Any]:
        """Plain types only: what the Ray application's ``info()`` sends."""
        return {
            "languages": list(self.languages),
            "question_languages": list(self.question_languages),
            "sizes": dict(self.sizes),
            "batch_size": self.batch_size,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Capabilities:
        return cls(
            languages=tuple(data["languages"]),
            question_languages=tuple(data["question_languages"]),
            sizes={str(kind): int(size) for kind, size in data["sizes"].items()},
            batch_size=int(data["batch_size"]),
        )
