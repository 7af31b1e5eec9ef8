"""``python -m bot``: settings -> application -> run (long polling, or a webhook)."""

from __future__ import annotations

import logging
import secrets
import sys
from urllib.parse import urlsplit

from telegram.error import InvalidToken

from captioning import CaptioningError

from .app import build_application
from .settings import BotSettings, MissingToken, load_settings

__all__ = ["configure_logging", "main"]


class RedactToken(logging.Filter):
    """Replaces the token wherever it appears in a log line: a second guard, after quiet httpx."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self._token in text:
            record.msg, record.args = text.replace(self._token, "<token>"), None
        if record.exc_info and record.exc_info[1] is not None and self._token in str(record.exc_info[1]):
            record.exc_text = (
                logging.Formatter().formatException(record.exc_info).replace(self._token, "<token>")
            )
        return True


def configure_logging(settings: BotSettings) -> None:
    """Log to stderr at LOG_LEVEL; never the token, and no request URLs (which contain it)."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactToken(settings.token))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)
    # httpx logs every request URL at INFO, and a Bot API URL contains the token.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main() -> int:
    try:
        settings, engine_settings = load_settings()
    except MissingToken:
        print(
            "error: TELEGRAM_BOT_TOKEN is not set. Get a token from @BotFather and put it in "
            "the environment or in .env.",
            file=sys.stderr,
        )
        return 2
    except CaptioningError as exc:  # a bad setting: one line that names it
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    application = build_application(settings, engine_settings)
    try:
        if settings.webhook_url:
            secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
            application.run_webhook(
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                # The local server answers on the path of the public URL (behind a proxy, say).
                url_path=urlsplit(settings.webhook_url).path.strip("/"),
                webhook_url=settings.webhook_url,
                secret_token=secret or secrets.token_urlsafe(32),
                bootstrap_retries=-1,
            )
        else:
            # Retry start-up on network errors for as long as it takes (a server that boots
            # before its network is up); a rejected token still stops at once.
            application.run_polling(bootstrap_retries=-1)
    except CaptioningError as exc:  # models that can't be loaded, found in post_init
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except InvalidToken:
        print("error: Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
