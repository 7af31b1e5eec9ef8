"""The bot's settings: typed, validated, read once from the environment and a ``.env`` file.

The token is a ``SecretStr``: it prints as ``**********`` in any repr or log line.
The engine's own settings (``CAPTION_MODEL``, ``DEVICE``, ...) are read alongside, from the
same places, into :class:`captioning.EngineSettings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from captioning import EngineSettings
from captioning.settings import settings_error

__all__ = ["BotSettings", "MissingToken", "load_settings"]


class MissingToken(Exception):
    """TELEGRAM_BOT_TOKEN is not set."""


class BotSettings(BaseSettings):
    """Where the bot talks to Telegram and where it keeps its state."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True, case_sensitive=False
    )

    telegram_bot_token: SecretStr
    # python-telegram-bot's base_url and base_file_url: the token is appended to both.
    # Point them at a self-hosted Bot API server (or a test's stand-in) to leave Telegram's.
    telegram_api_url: str = "https://api.telegram.org/bot"
    telegram_file_url: str = "https://api.telegram.org/file/bot"
    state_dir: Path = Path("state")
    # Webhook mode when set: the public https URL Telegram should post updates to.
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(8443, ge=1, le=65535)
    # Telegram sends it back in a header on every update; a random one is made at each start
    # when unset (the bot registers the webhook itself, so nothing else needs to know it).
    webhook_secret: SecretStr | None = None
    log_level: str = Field("INFO", pattern=r"(?i)^(DEBUG|INFO|WARNING|ERROR)$")
    # Updates handled at once: photos must be in flight together for the engine to batch them.
    concurrent_updates: int = Field(256, ge=1, le=65536)
    # Where the models run: "local" (this process's executor) or "ray" (the Ray Serve
    # application "captioning" on the cluster at RAY_ADDRESS; see captioning.ray_serve).
    caption_backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    # /metrics and /healthz on this port when set (0 picks a free one); local by default.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"

    @property
    def token(self) -> str:
        return self.telegram_bot_token.get_secret_value()


def load_settings(env_file: str | Path | None = ".env") -> tuple[BotSettings, EngineSettings]:
    """Read both settings objects from the environment and ``env_file``.

    Raises :class:`MissingToken` when there is no token, and ``SettingsError`` (one line that
    names the variable) for any other bad value.
    """
    try:
        bot = BotSettings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        if any(e["loc"] == ("telegram_bot_token",) and e["type"] == "missing" for e in exc.errors()):
            raise MissingToken("TELEGRAM_BOT_TOKEN is not set") from None
        raise settings_error(exc) from exc
    if not bot.token.strip():
        raise MissingToken("TELEGRAM_BOT_TOKEN is empty")
    try:
        engine = EngineSettings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise settings_error(exc) from exc
    return bot, engine
