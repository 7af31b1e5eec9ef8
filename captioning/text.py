"""Generated text, tidied: a caption or an answer as one line; text read from a picture with
its lines kept. Shared by the model adapters and the translators."""

from __future__ import annotations

import re

__all__ = ["clean_text", "tidy_text", "whole_sentences"]

# A sentence's end: its mark, any closing quote or bracket, then a space. Not after a short
# capitalised word ("St. Mary's", "Dr. Lee", "J. Smith"): that is an abbreviation.
_CLOSE = "\"'\u00bb\u201d\u2019)\\]"  # closing quotes and brackets
_END = re.compile(rf"(?<![A-Z])(?<![A-Z][a-z])(?<![A-Z][a-z]{{2}})[.!?\u2026][{_CLOSE}]*(?=\s)")
_ENDED = re.compile(rf"[.!?\u2026][{_CLOSE}]*$")


def clean_text(text: str) -> str:
    """Generated text -> one tidy line: no stray whitespace or line breaks."""
    return re.sub(r"\s+", " ", text).strip()


def tidy_text(text: str) -> str:
    """Text as read -> lines kept, runs of spaces collapsed, blank edges gone."""
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n")


def whole_sentences(text: str) -> str:
    """A text cut short by its token limit ("... It is on the") -> its whole sentences. A text
    that ends its last sentence, or has only the one, is kept as it is."""
    if not text or _ENDED.search(text):
        return text
    ends = list(_END.finditer(text))
    return text[: ends[-1].end()] if ends else text
