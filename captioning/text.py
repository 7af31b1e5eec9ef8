"""Generated text, tidied: a caption or an answer as one line; text read from a picture with
its lines kept. Shared by the model adapters and the translators."""

from __future__ import annotations

import re

__all__ = ["clean_text", "tidy_text"]


def clean_text(text: str) -> str:
    """Generated text -> one tidy line: no stray whitespace or line breaks."""
    return re.sub(r"\s+", " ", text).strip()


def tidy_text(text: str) -> str:
    """Text as read -> lines kept, runs of spaces collapsed, blank edges gone."""
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n")
