"""The engine's answer for one picture; plain data, importable without torch."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Description"]


@dataclass(frozen=True)
class Description:
    """What a person reads: the English caption and its Spanish translation."""

    english: str
    spanish: str
