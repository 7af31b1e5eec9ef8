"""A translator per language, over batches and long texts: what the engine and the CLI share.

Marian translates a sentence, not a page: it reads at most 512 tokens, writes at most
TRANSLATION_MAX_NEW_TOKENS, and on one line. So a text read in a picture goes line by line (a
menu), paragraph by paragraph (a letter: its wrapped lines joined, :func:`text_lines`), a long
line in pieces cut at sentence ends (:func:`translation_pieces`), and the pieces of every
text in batches per language. Blank lines and the order of lines are kept. A description is
one line: a short one goes whole, a long one (a paragraph) a sentence at a time.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence

from ..errors import SettingsError
from ..questions import Question
from . import Translator

__all__ = ["MAX_TRANSLATION_ROWS", "Translations", "text_lines", "translation_pieces"]

# Texts per translator call: every caption of a batch fits; a page read in a picture may be
# hundreds of lines, which go in batches this size.
MAX_TRANSLATION_ROWS = 64
# Characters of a text read that go to Marian in one piece, per token of its output limit
# (TRANSLATION_MAX_NEW_TOKENS): opus-mt's tokens average 3 to 5 characters, so a piece of
# 2 characters a token (160 at the default 80) comes back whole.
PIECE_CHARS_PER_TOKEN = 2
# A line at least this long that doesn't end a sentence is prose wrapped onto the next line
# (a letter, a page); shorter lines are a list's (a menu, a timetable) and stay lines.
WRAPPED_LINE_CHARS = 40
_ENDS_SENTENCE = tuple(".!?:;\u2026")
# Where a sentence ends: . ! ? or … followed by a space.
_SENTENCE_END = re.compile(r"(?<=[.!?\u2026])\s+")


def text_lines(text: str) -> list[str]:
    """A text read in a picture -> the lines to translate: its lines, with those of wrapped
    prose joined back into one, so each sentence is translated whole, not in fragments.
    A list's short lines, and blank lines, are kept as they are."""
    lines: list[str] = []
    runs_on = False  # the last line read is prose that goes on in the next one
    for line in text.split("\n"):
        stripped = line.strip()
        if runs_on and stripped:
            lines[-1] = f"{lines[-1].rstrip()} {stripped}"
        else:
            lines.append(line)
        runs_on = len(stripped) >= WRAPPED_LINE_CHARS and not stripped.endswith(_ENDS_SENTENCE)
    return lines


def translation_pieces(line: str, max_chars: int) -> list[str]:
    """One line of text -> the pieces to translate it in, each at most ``max_chars`` long.

    A line that fits is one piece; a longer one is cut into its sentences, and a sentence still
    too long between words (a word longer than ``max_chars`` at ``max_chars``). A blank line has
    no pieces.
    """
    line = " ".join(line.split())
    if len(line) <= max_chars:
        return [line] if line else []
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(line):
        while len(sentence) > max_chars:
            cut = sentence.rfind(" ", 0, max_chars + 1)
            cut = cut if cut > 0 else max_chars
            pieces.append(sentence[:cut].rstrip())
            sentence = sentence[cut:].lstrip()
        if sentence:
            pieces.append(sentence)
    return pieces


class Translations:
    """Translators keyed by language code: into each language (captions), or from each into
    English (questions, :meth:`to_english`)."""

    def __init__(self, translators: Mapping[str, Translator], *, max_new_tokens: int = 80) -> None:
        self.translators = dict(translators)
        self.piece_chars = PIECE_CHARS_PER_TOKEN * max_new_tokens

    @property
    def languages(self) -> tuple[str, ...]:
        """The language codes there is a translator for, in order."""
        return tuple(self.translators)

    def translate(self, texts: Sequence[str], languages: Sequence[Collection[str]]) -> list[dict[str, str]]:
        """Each text (one line) into the languages wanted for it: one pass per language, over
        every text that wants it, at most MAX_TRANSLATION_ROWS at a time. Languages without a
        translator are left out."""
        out: list[dict[str, str]] = [{} for _ in texts]
        for code, translator in self.translators.items():
            wanted = [i for i, langs in enumerate(languages) if code in langs and texts[i]]
            for start in range(0, len(wanted), MAX_TRANSLATION_ROWS):
                rows = wanted[start : start + MAX_TRANSLATION_ROWS]
                for i, text in zip(rows, translator.translate([texts[i] for i in rows]), strict=True):
                    out[i][code] = text
        return out

    def translate_texts(
        self, texts: Sequence[str], languages: Sequence[Collection[str]]
    ) -> list[dict[str, str]]:
        """Whole texts, lines kept (see the module's docstring), into the languages wanted for
        each; a text with no words has no translations."""
        layouts = [[translation_pieces(line, self.piece_chars) for line in text_lines(t)] for t in texts]
        pieces: list[str] = []
        wanted: list[Collection[str]] = []
        for lines, langs in zip(layouts, languages, strict=True):
            for line in lines:
                pieces += line
                wanted += [langs] * len(line)
        done = iter(self.translate(pieces, wanted))
        results = []
        for lines, langs in zip(layouts, languages, strict=True):
            translated = [[next(done) for _ in line] for line in lines]
            codes = [c for c in self.translators if c in langs] if any(lines) else []
            results.append({code: _rejoined(translated, code) for code in codes})
        return results

    def to_english(self, questions: Sequence[Question | str]) -> list[str]:
        """Questions in English: those asked in other languages translated, one pass per
        language. A language without its question model is a :class:`SettingsError`."""
        asked = [q if isinstance(q, Question) else Question(q) for q in questions]
        missing = {q.language for q in asked} - {"en", *self.translators}
        if missing:
            code = sorted(missing)[0]
            raise SettingsError(f"Questions in {code!r} need a question model (QUESTION_TRANSLATION_MODELS).")
        translated = self.translate([q.text for q in asked], [{q.language} for q in asked])
        return [
            q.text if q.language == "en" else t.get(q.language, "")
            for q, t in zip(asked, translated, strict=True)
        ]


def _rejoined(lines: list[list[dict[str, str]]], code: str) -> str:
    """The translations into ``code`` of each line's pieces, put back into lines."""
    return "\n".join(" ".join(piece[code] for piece in line if piece.get(code)) for line in lines)
