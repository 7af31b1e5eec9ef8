"""Questions about a picture: what was asked, in which language, and the prompt BLIP-2 gets.

BLIP-2 answers English questions put as ``Question: ... Answer:``. A question in another
language is first translated to English (QUESTION_TRANSLATION_MODELS, opus-mt-es-en for
Spanish); the English answer is then translated back like any caption. (A chat model that
writes the question's language itself, CHAT_MODEL_LANGUAGES, is asked it as asked.) Which language a
question is in is decided here, by py3langid (a naive Bayes over byte n-grams, limited to the
languages questions can be asked in), with the asker's own language deciding the cases too
short or too mixed to tell.

Plain Python and numpy: the bot imports this without torch.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_QUESTION_CHARS",
    "Question",
    "QuestionLanguage",
    "looks_like_a_question",
    "prompt",
    "question_language",
]

QuestionLanguage = str  # an ISO 639-1 code: "en", "es", ...

# A question is a sentence, not an essay; BLIP-2's language model sees few words well.
MAX_QUESTION_CHARS = 300
# Below this probability the detector's guess yields to the asker's language.
_CONFIDENT = 0.8
# Marks only Spanish writes: opening question and exclamation marks, ñ.
_SPANISH_MARKS = re.compile(r"[¿¡ñÑ]")
# How questions and requests about a picture start, for those typed or dictated without a
# question mark ("what is he holding", "describe the background", "qué dice el cartel").
_OPENINGS = frozenset(
    """
    what what's whats which who who's whose where where's when why how how's is isn't are
    aren't was were does doesn't do don't did can could would will should has have any
    describe tell read explain show count name qué que cuál cual cuáles cuales quién quien
    quiénes dónde donde cuándo cuando por cómo como cuánto cuanto cuánta cuanta cuántos
    cuantos cuántas cuantas hay es son está esta están estan tiene tienen puedes describe
    describa descríbeme describeme dime lee léeme leeme explica cuenta
    """.split()  # noqa: SIM905 (a word list reads best as words)
)


# Words a follow-up question may open with before its question word.
_LEADS = frozenset("and so but also then okay ok y e pero entonces también vale".split())  # noqa: SIM905


@dataclass(frozen=True)
class Question:
    """A question about one picture, as asked, and the language it was asked in."""

    text: str
    language: QuestionLanguage = "en"


def prompt(english_question: str) -> str:
    """The prompt BLIP-2 was taught to answer (its model card's VQA format)."""
    return f"Question: {english_question.strip()} Answer:"


def looks_like_a_question(text: str) -> bool:
    """True for "what color is it?", "describe the background", "qué dice"; False for
    "thanks!", "lol", "gracias": where every reply is not a question (groups), only these are."""
    if "?" in text or "¿" in text:
        return True
    words = re.findall(r"[\w'\u2019]+", text.lower())
    if words and words[0] in _LEADS:  # "and what is she holding?", "y qué lleva"
        words = words[1:]
    return bool(words) and words[0].replace("\u2019", "'") in _OPENINGS


def question_language(
    text: str, hint: str = "en", languages: Sequence[str] = ("en", "es")
) -> QuestionLanguage:
    """Which of ``languages`` ``text`` is in; ``hint`` (the asker's own language, a Telegram
    ``language_code``) decides unclear cases. The hint counts among the languages when the
    identifier knows it: "combien ?" from a French speaker is French, whether or not French is
    offered, never English sent on untranslated."""
    hint = (hint or "en").lower().split("-")[0]
    if hint in _identifiable():
        languages = (*languages, hint)
    languages = tuple(dict.fromkeys(("en", *languages)))
    fallback = hint if hint in languages else "en"
    if len(languages) == 1:
        return "en"
    if "es" in languages and _SPANISH_MARKS.search(text):
        return "es"
    if not re.search(r"\w", text):
        return fallback
    language, probability = _identifier(tuple(sorted(languages))).classify(text)
    return language if probability >= _CONFIDENT else fallback


@functools.cache
def _identifiable() -> frozenset[str]:
    """The languages the identifier knows (about 100)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return frozenset(LanguageIdentifier.from_model_file(MODEL_FILE).nb_classes)


@functools.cache
def _identifier(languages: tuple[str, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier
