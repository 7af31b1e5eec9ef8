"""What a person reads: descriptions and answers in a chat's languages, and the labels.

One loop over the chat's languages makes every reply: with one language, one labelled line;
with several, a header in each of them and a line per language, labelled with the
language's own name. Labels come from each language's catalog (:mod:`bot.messages`); a
language without one is labelled in English. Everything is plain text. (The buttons under
the replies are :mod:`bot.actions`'.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from captioning import Translated
from captioning.languages import native_name

from .messages import CATALOG, message

__all__ = [
    "MAX_DESCRIPTION_CHARS",
    "album_reply",
    "answer_reply",
    "describe_reply",
    "fit",
    "inert",
    "label",
    "lang_keyboard",
    "sentence",
    "voice",
]

# Telegram's limit is 4096 characters; a description is meant to be read aloud, so each
# language gets far less than that.
MAX_DESCRIPTION_CHARS = 600


# Where Telegram would make a mention (@name) or a command to tap (/start) of text the bot
# only repeats: an @ or a / that starts a word.
_ACTIVE = re.compile(r"(?<![\w@/])([@/])(?=\w)")
# A word joiner: invisible, and screen readers pass over it.
WORD_JOINER = "\u2060"


def inert(text: str) -> str:
    """Text the bot repeats (what a picture says, what a model wrote) as words only: a word
    joiner after each @ or / that starts a word, so Telegram's apps make no mention that pings
    someone and no command to tap, while the text reads, and sounds, as it was written. (Links
    stay links; no message of the bot unfurls them: :mod:`bot.sending`.)"""
    return _ACTIVE.sub(lambda m: m.group(1) + WORD_JOINER, text)


def sentence(text: str) -> str:
    """'a red square' -> 'A red square.'; capped in length for screen readers."""
    text = inert(text.strip())
    if len(text) > MAX_DESCRIPTION_CHARS:
        text = text[: MAX_DESCRIPTION_CHARS - 1].rsplit(" ", 1)[0] + "…"
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def label(key: str, languages: Sequence[str], **values: object) -> str:
    """A label in each of ``languages`` that has its own wording, joined with " / "."""
    seen: list[str] = []
    for lang in languages:
        text = message(key, lang if lang in CATALOG else "en", **values)
        if text not in seen:
            seen.append(text)
    return " / ".join(seen)


def _texts(result: Translated, languages: Sequence[str]) -> list[tuple[str, str]]:
    """(language, sentence) for each of ``languages`` the result has a text in."""
    return [(lang, sentence(result.text(lang))) for lang in languages if result.text(lang)]


def voice(languages: Sequence[str], ui: str) -> str:
    """The language a note to the chat is in: its only language if it has a catalog, else the asker's."""
    return languages[0] if len(languages) == 1 and languages[0] in CATALOG else ui


def describe_reply(result: Translated, languages: Sequence[str], ui: str = "en") -> str:
    """The reply under a photo, labelled as an automatic description."""
    return labelled_reply(result, languages, ui, "description")


def labelled_reply(result: Translated, languages: Sequence[str], ui: str, kind: str) -> str:
    """A result about a picture in the chat's languages, under its label (``kind``: the
    catalog's "description", "where"...), or the catalog's "no_<kind>" when there is none."""
    texts = _texts(result, languages)
    if not result.english or not texts:
        return message(f"no_{kind}", voice(languages, ui))
    if len(texts) == 1:
        [(lang, text)] = texts
        return f"{label(kind, [lang])}: {text}"
    lines = [label(kind, [lang for lang, _ in texts])]
    return "\n".join(lines + [f"{native_name(lang)}: {text}" for lang, text in texts])


def answer_reply(results: list[Translated | str], languages: Sequence[str], ui: str = "en") -> str:
    """The answer to a question about one picture, or about each picture of an album.

    A result is an answer, or the sentence that says why there is none. ``ui`` is the asker's
    language; the answers themselves are in the chat's ``languages``.
    """
    if len(results) == 1:
        [result] = results
        if isinstance(result, str):
            return result
        texts = _texts(result, languages)
        if not result.english or not texts:
            return message("no_answer", voice(languages, ui))
        return "\n".join(f"{_answer_label(lang)}: {text}" for lang, text in texts)
    return _numbered(results, languages, ui, "answers_for", "answers", "album_item_unanswered")


def album_reply(results: list[Translated | BaseException], languages: Sequence[str], ui: str = "en") -> str:
    """One message for an album: its pictures numbered 1..N, in the order they were sent."""
    return _numbered(results, languages, ui, "descriptions_of", "descriptions", "album_item_failed")


def _answer_label(lang: str) -> str:
    return message("answer", lang) if lang in CATALOG else native_name(lang)


def _numbered(
    results: Sequence[object],
    languages: Sequence[str],
    ui: str,
    header_one: str,
    header_many: str,
    failed: str,
) -> str:
    count = len(results)
    if len(languages) == 1:
        header = label(header_one, languages, count=count)
    else:
        header = f"{label(header_many, languages)} ({count}):"
    lines = [header]
    for number, result in enumerate(results, start=1):
        texts = _texts(result, languages) if isinstance(result, Translated) and result.english else []
        if not texts:
            lines.append(f"{number}. " + message(failed, voice(languages, ui)))
        elif len(languages) == 1:
            lines.append(f"{number}. {texts[0][1]}")
        else:
            first, *rest = (f"{native_name(lang)}: {text}" for lang, text in texts)
            lines.append("\n   ".join([f"{number}. {first}", *rest]))
    return fit(lines, ui)


def fit(lines: list[str], ui: str = "en", limit: int = 4096) -> str:
    """Join lines into one message within Telegram's limit, saying what was left out."""
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    for line in lines:
        if len("\n".join([*kept, line])) > limit - 40:
            break
        kept.append(line)
    return "\n".join([*kept, message("more_not_shown", ui, count=len(lines) - len(kept))])


def lang_keyboard(available: tuple[str, ...], current: tuple[str, ...]) -> InlineKeyboardMarkup:
    """One button per language the bot can describe in; the chosen ones ticked."""
    buttons = [
        InlineKeyboardButton(
            ("✓ " if code in current else "") + native_name(code), callback_data=f"lang:{code}"
        )
        for code in available
    ]
    return InlineKeyboardMarkup([buttons[i : i + 3] for i in range(0, len(buttons), 3)])
