"""What the bot sends, within Telegram's limits, whatever a flow asks.

:class:`LimitedBot` is the application's bot: every Bot API call goes through its
``_do_post`` (python-telegram-bot's own hook, which its rate limiter uses too), where a text
over Telegram's 4,096 characters, or a caption over 1,024, is cut to fit, with "…" and a
warning in the log: the flows fit their messages themselves (a long text goes as a file), so
this is the last line, never the plan. And no message unfurls a link: a description or a
text read from a sign may hold a URL, and a preview card is noise a screen reader reads out.

Answering a button press is a courtesy (it stops the spinner), and Telegram takes one answer a
press: a press tried again (its reply didn't go through) or replayed after a restart is
refused a second one. That refusal is no reason not to do what was pressed: it is let pass.
"""

from __future__ import annotations

import logging
from typing import Any

from telegram import LinkPreviewOptions
from telegram.constants import MessageLimit
from telegram.error import BadRequest
from telegram.ext import Defaults, ExtBot

from .updates.processor import count_sent

__all__ = ["DEFAULTS", "LimitedBot", "within_limits"]

log = logging.getLogger(__name__)

# Per endpoint, the field and its limit, in characters.
LIMITS = {
    "sendMessage": ("text", MessageLimit.MAX_TEXT_LENGTH),
    "editMessageText": ("text", MessageLimit.MAX_TEXT_LENGTH),
    "sendDocument": ("caption", MessageLimit.CAPTION_LENGTH),
    "sendPhoto": ("caption", MessageLimit.CAPTION_LENGTH),
    "editMessageCaption": ("caption", MessageLimit.CAPTION_LENGTH),
}

DEFAULTS = Defaults(link_preview_options=LinkPreviewOptions(is_disabled=True))
# What puts something new in a chat (counted against whoever asked: bot.quota).
SENDS = frozenset({"sendMessage", "sendDocument", "sendPhoto"})


def within_limits(endpoint: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` for ``endpoint``, its text or caption cut to Telegram's limit if it is longer."""
    field, limit = LIMITS.get(endpoint, ("", 0))
    value = data.get(field)
    if not isinstance(value, str) or len(value) <= limit:
        return data
    log.warning("A %s of %d characters was cut to Telegram's %d", endpoint, len(value), limit)
    return {**data, field: value[: limit - 1] + "…"}


class LimitedBot(ExtBot[Any]):
    """The bot, each call's text within Telegram's limits (see the module's docstring)."""

    async def _do_post(self, endpoint: str, data: dict[str, Any], **timeouts: Any) -> Any:
        try:
            result = await super()._do_post(endpoint, within_limits(endpoint, data), **timeouts)
        except BadRequest as exc:
            if endpoint == "answerCallbackQuery" and _answered_before(exc):
                log.info("A press was answered before (%s); doing what it asks all the same", exc)
                return True
            raise
        if endpoint in SENDS:
            count_sent(weight(data))
        return result


def weight(data: dict[str, Any]) -> int:
    """What a message or file costs of its asker's quota (bot.quota): a message, 1; a file, 1
    for every 4,096 characters it holds (a long text or translation costs more than a short one)."""
    document = data.get("document")
    content = getattr(document, "input_file_content", None)
    if isinstance(content, bytes):
        return max(1, -(-len(content) // MessageLimit.MAX_TEXT_LENGTH))
    return 1


def _answered_before(exc: BadRequest) -> bool:
    """Telegram's refusal of a second answer to a press (or of one too late to show)."""
    text = str(exc).lower()
    return "query is too old" in text or "query id is invalid" in text
