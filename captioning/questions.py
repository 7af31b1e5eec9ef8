"""Questions about a picture: what was asked, in which language, and the prompt BLIP-2 gets.

BLIP-2 answers English questions put as ``Question: ... Answer:``. A Spanish question is
first translated to English (QUESTION_TRANSLATION_MODEL, opus-mt-es-en); the English answer
is then translated back like any caption. Which language a question is in is decided here,
by py3langid (a naive Bayes over byte n-grams, limited to English and Spanish), with the
asker's own language deciding the cases too short or too mixed to tell.

Plain Python and numpy: the bot imports this without torch.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["MAX_QUESTION_CHARS", "Question", "QuestionLanguage", "prompt", "question_language"]

QuestionLanguage = Literal["en", "es"]

# A question is a sentence, not an essay; BLIP-2's language model sees few words well.
MAX_QUESTION_CHARS = 300
# Below this probability the detector's guess yields to the asker's language.
_CONFIDENT = 0.8
# Marks only Spanish writes: opening question and exclamation marks, ñ.
_SPANISH_MARKS = re.compile(r"[¿¡ñÑ]")


@dataclass(frozen=True)
class Question:
    """A question about one picture, as asked, and the language it was asked in."""

    text: str
    language: QuestionLanguage = "en"


def prompt(english_question: str) -> str:
    """The prompt BLIP-2 was taught to answer (its model card's VQA format)."""
    return f"Question: {english_question.strip()} Answer:"


def question_language(text: str, hint: str = "en") -> QuestionLanguage:
    """ "en" or "es" for ``text``; ``hint`` (the asker's language) decides unclear cases."""
    fallback: QuestionLanguage = "es" if hint == "es" else "en"
    if _SPANISH_MARKS.search(text):
        return "es"
    if not re.search(r"\w", text):
        return fallback
    language, probability = _identifier().classify(text)
    return language if probability >= _CONFIDENT else fallback


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(["en", "es"])
    return identifier
