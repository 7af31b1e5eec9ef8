"""``python -m bot``: settings -> application -> runner (long polling, or a webhook).

Exit status: 0 after SIGTERM or Ctrl-C; 2 for a problem only a person can fix (no token, a
token Telegram rejects, a bad setting, a model that can't be loaded), said in one line; 1 for
a failure the bot can't get past by itself (the database stays unavailable, the model thread
stops), said in one log line, for a supervisor to restart it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from captioning import CaptioningError, EngineSettings

from .app import build_application
from .runner import Runner, TokenRejected
from .settings import BotSettings, MissingToken, load_settings
from .store import StoreUnavailable

__all__ = ["configure_logging", "main"]

log = logging.getLogger("bot")


class RedactToken(logging.Filter):
    """Replaces the token wherever it appears in a log line: in the message, its arguments,
    or a traceback (a network error's text carries the request URL, which carries the token)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self._token in text:
            record.msg, record.args = text.replace(self._token, "<token>"), None
        if record.exc_info and record.exc_info[1] is not None:
            formatted = logging.Formatter().formatException(record.exc_info)
            if self._token in formatted:
                record.exc_text = formatted.replace(self._token, "<token>")
        if record.exc_text and self._token in record.exc_text:
            record.exc_text = record.exc_text.replace(self._token, "<token>")
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


async def serve(settings: BotSettings, engine_settings: EngineSettings) -> int:
    application = build_application(settings, engine_settings)
    runner = Runner(application)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, runner.request_stop)
    return await runner.run()


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
    try:
        return asyncio.run(serve(settings, engine_settings))
    except TokenRejected:
        print("error: Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather.", file=sys.stderr)
        return 2
    except CaptioningError as exc:  # models that can't be loaded, a bad setting found late
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        log.error("Stopping: %s. Exit status 1, for a supervisor to restart the bot.", exc)
        return 1
    except KeyboardInterrupt:  # a second Ctrl-C, while stopping
        return 130


if __name__ == "__main__":
    sys.exit(main())
