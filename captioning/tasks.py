"""What can be asked of a picture, and what comes back; plain data, importable without torch.

A task is a frozen value with a ``kind``. The executor groups requests by kind and hands each
group to its backend as ``run(kind, pictures, tasks)``; it never looks inside a task. Each
backend maps a kind to one method in one table, so a new task is one class here and one
entry in each table.

    Describe(detailed=False, languages=("es",))   -> Translated: a caption and its translations
    Answer(question, languages=("es",))            -> Translated: an answer and its translations
    Read()                                         -> str: the text written in the picture
    Locate(languages=("es",))                      -> Translated: where things are, in words
    Translate(text, languages=("es",))             -> Translated: a text read, translated (no picture)

``languages`` are the translations wanted besides English (ISO 639-1 codes): only the
languages a chat reads are translated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from .questions import Question

__all__ = ["Answer", "Describe", "Locate", "Read", "Task", "Translate", "Translated"]


@dataclass(frozen=True)
class Translated:
    """An English text (a caption, an answer) and its translations, by language code."""

    english: str
    translations: Mapping[str, str] = field(default_factory=dict)

    def text(self, language: str) -> str:
        """The text in ``language``: "en" is the English; "" if there is no such translation."""
        return self.english if language == "en" else self.translations.get(language, "")

    def only(self, languages: Iterable[str]) -> Translated:
        """The same, keeping only the translations into ``languages``."""
        wanted = set(languages)
        return Translated(self.english, {k: v for k, v in self.translations.items() if k in wanted})


@dataclass(frozen=True)
class Describe:
    """A short description; ``detailed`` asks for beam search and room for more words."""

    detailed: bool = False
    languages: tuple[str, ...] = ("es",)

    @property
    def kind(self) -> str:
        # One generation setting per forward pass: detailed descriptions go in passes of their own.
        return "describe_detailed" if self.detailed else "describe"


@dataclass(frozen=True)
class Answer:
    """The answer to a question about the picture. ``earlier``: the questions asked about it
    before in the same conversation, each with its (English) answer, earliest first: a chat
    model hears them ("and what is she holding?" follows "who is in the photo?"); BLIP-2 asks
    each question alone."""

    question: Question
    languages: tuple[str, ...] = ("es",)
    earlier: tuple[tuple[Question, str], ...] = ()
    kind: ClassVar[str] = "answer"


@dataclass(frozen=True)
class Read:
    """The text written in the picture, verbatim (signs, menus, screenshots, documents)."""

    kind: ClassVar[str] = "read"


@dataclass(frozen=True)
class Locate:
    """Where things are in the picture, in plain words: "On the left: a person. ..." """

    languages: tuple[str, ...] = ("es",)
    kind: ClassVar[str] = "where"


@dataclass(frozen=True)
class Translate:
    """An English text (read in a picture) in other languages; it needs no picture."""

    text: str
    languages: tuple[str, ...] = ("es",)
    kind: ClassVar[str] = "translate"


Task = Describe | Answer | Read | Locate | Translate
