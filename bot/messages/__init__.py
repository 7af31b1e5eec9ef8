"""Everything the bot says, by interface language: ``CATALOG[language][key]``.

One module per language, found here by itself: ``en.py``, ``es.py``, ... each with its
``MESSAGES`` (every key of ``en.py``, with the same ``{placeholders}``: a test checks) and its
``COMMANDS`` (the commands' names in that language, where they differ: ``{"read": "leer"}``).
A new interface language is one new file; its commands work and are in its menu at once.
A language without a catalog reads the interface in English, while its descriptions still
come in that language.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telegram import User

__all__ = ["CATALOG", "COMMAND_NAMES", "message", "ui_language", "user_language"]


def _catalogs() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
    messages, commands = {}, {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: (i.name != "en", i.name)):
        module = import_module(f".{info.name}", __name__)
        messages[info.name], commands[info.name] = module.MESSAGES, module.COMMANDS
    return messages, commands


CATALOG, COMMAND_NAMES = _catalogs()


def ui_language(language_code: str | None) -> str:
    """The interface language for a Telegram language code (es, es-MX, pt-br, ...): its own
    catalog if there is one, else English."""
    code = (language_code or "").lower().split("-")[0]
    return code if code in CATALOG else "en"


def own_language(user: User | None) -> str:
    """The language a person's Telegram is set to ("fr" for fr-CA), whether or not the bot
    speaks it; English for nobody in particular. (:func:`user_language` is the bot's.)"""
    return ((user.language_code if user else None) or "en").lower().split("-")[0]


def user_language(user: User | None) -> str:
    """The interface language for a person (English for nobody in particular)."""
    return ui_language(user.language_code if user else None)


def message(key: str, lang: str, **values: object) -> str:
    """The text ``key`` in the interface language ``lang`` (English where there is no catalog)."""
    catalog = CATALOG.get(lang, CATALOG["en"])
    return catalog.get(key, CATALOG["en"][key]).format(**values)
