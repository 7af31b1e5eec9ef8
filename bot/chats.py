"""A chat's languages: what its descriptions and answers are given in, in order.

A chat that chose (``/lang en fr``) gets what it chose, among the languages the engine has
models for (:meth:`bot.context.BotContext.languages`). A new chat gets English and Spanish; a
private chat also gets its person's own Telegram language, when the engine has it.
"""

from __future__ import annotations

from telegram import Chat, User

__all__ = ["DEFAULT_LANGUAGES", "default_languages", "translations"]

DEFAULT_LANGUAGES = ("en", "es")


def default_languages(chat: Chat, user: User | None, available: tuple[str, ...]) -> tuple[str, ...]:
    chosen = [lang for lang in DEFAULT_LANGUAGES if lang in available]
    own = (user.language_code or "").lower().split("-")[0] if user else ""
    if chat.type == Chat.PRIVATE and own in available and own not in chosen:
        chosen.append(own)
    return tuple(chosen) or ("en",)


def translations(languages: tuple[str, ...]) -> tuple[str, ...]:
    """The languages the engine must translate into: all but English."""
    return tuple(lang for lang in languages if lang != "en")
