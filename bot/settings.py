"""The bot's settings: typed, validated, read once from the environment and a ``.env`` file.

The token is a ``SecretStr``: it prints as ``**********`` in any repr or log line. An empty
value means "not set", so ``.env.example`` copied as it is, with a token added, is valid.
The engine's own settings (``CAPTION_MODEL``, ``DEVICE``, ...) are read alongside, from the
same places, into :class:`captioning.EngineSettings`.

:class:`Timings` are the bot's waits and retry schedules: not for operators to tune, but
passed in as one object, so that tests can make them short without patching modules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from captioning import EngineSettings
from captioning.settings import settings_error

__all__ = ["BotSettings", "MissingToken", "Timings", "load_settings"]


class MissingToken(Exception):
    """TELEGRAM_BOT_TOKEN is not set."""


# Where Telegram posts a webhook's updates: https only, on one of these ports; and what its
# secret_token may be made of.
WEBHOOK_PORTS = (443, 80, 88, 8443)
WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


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
    # Every Bot API call and file download goes through it when set: http://, https:// or
    # socks5://, credentials in the URL if the proxy wants them (hence a secret). Unset:
    # HTTPS_PROXY and NO_PROXY, if set, decide.
    telegram_proxy: SecretStr | None = None
    state_dir: Path = Path("state")
    # How long a locked or failing database is waited for before the bot exits (status 1)
    # for its supervisor to restart it.
    state_db_timeout_s: float = Field(120.0, gt=0, le=86_400)
    # Webhook mode when set: the public https URL Telegram should post updates to.
    webhook_url: str | None = None
    # A TLS proxy sits in front of the webhook server: it listens on the loopback by default.
    webhook_listen: str = "127.0.0.1"
    # 0 picks a free port (logged), for a proxy that finds it some other way.
    webhook_port: int = Field(8443, ge=0, le=65535)
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
    # The name the application was deployed under: `serve run --name captioning ...`.
    ray_app_name: str = Field("captioning", min_length=1)
    # The cluster's token, when it runs with token authentication (RAY_AUTH_MODE=token on every
    # node, Ray 2.52 and later): the bot joins with it. Ray's own name for it, read here too so
    # that it may sit in .env, which Ray never reads.
    ray_auth_token: SecretStr | None = None
    # What one person's asks may make the bot say in a chat, in messages a minute (a file counts
    # one for every 4,096 characters): past it, one quiet notice, and the asks wait a minute.
    person_messages_per_minute: int = Field(10, ge=1, le=10_000)
    # The text read from pictures (letters, prescriptions), and its translations, is kept this
    # long for the same picture read again, and then forgotten; descriptions, 30 days.
    read_text_kept_hours: float = Field(24.0, gt=0, le=30 * 24)
    # In a private chat, a question sent this soon after the bot's last answer about a picture
    # (not as a reply) is about that picture (or album); 0 turns that off.
    follow_up_minutes: float = Field(10.0, ge=0, le=24 * 60)
    # On SIGTERM, work in flight gets this long to finish; the rest stays journaled for the
    # next start. Keep it under the supervisor's stop timeout (systemd's is 90 s).
    shutdown_grace_s: float = Field(30.0, ge=0, le=3600)
    # /metrics and /healthz on this port when set (0 picks a free one); local by default.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, values: Any) -> Any:
        if not isinstance(values, Mapping):
            return values
        return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}

    @field_validator("telegram_proxy")
    @classmethod
    def _a_proxy_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never repeats the value: it may hold the proxy's password.
        if value is not None:
            parts = urlsplit(value.get_secret_value())
            try:
                port = parts.port
            except ValueError:
                port = None
            if parts.scheme not in ("http", "https", "socks5") or not parts.hostname or port is None:
                raise ValueError(
                    "TELEGRAM_PROXY: must be an http://, https:// or socks5:// URL with a host and "
                    "a port, such as http://proxy.example:3128"
                )
        return value

    @field_validator("webhook_url")
    @classmethod
    def _a_webhook_url(cls, value: str | None) -> str | None:
        # What setWebhook would refuse, refused here: a setting to fix (exit 2), not a failure
        # to restart into. Telegram posts only to https, and only on these ports.
        if value is not None:
            parts = urlsplit(value)
            try:
                port = parts.port or 443
            except ValueError:
                port = 0
            if parts.scheme != "https" or not parts.hostname or port not in WEBHOOK_PORTS:
                raise ValueError(
                    "WEBHOOK_URL: must be an https:// URL on port 443, 80, 88 or 8443 (Telegram "
                    "posts nowhere else), such as https://bot.example.org/telegram"
                )
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _a_webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's rule for secret_token; the message never repeats the value.
        if value is not None and not WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("WEBHOOK_SECRET: must be 1 to 256 characters, each A-Z, a-z, 0-9, _ or -")
        return value

    @property
    def proxy(self) -> str | None:
        return self.telegram_proxy.get_secret_value() if self.telegram_proxy else None

    @property
    def token(self) -> str:
        return self.telegram_bot_token.get_secret_value()


@dataclass(frozen=True)
class Timings:
    """How long the bot waits for things, in seconds."""

    # An answer quicker than this needs no "typing…": the reply itself arrives first.
    typing_after_s: float = 0.3
    # Telegram shows "typing…" for 5 seconds per chat action; private chats refresh it sooner.
    typing_refresh_s: float = 4.0
    # A picture that waits longer than this gets a "queued, number N" reply.
    status_after_s: float = 3.0
    # A button press answered within this needs no "working on it" toast.
    quick_answer_s: float = 2.0
    # An album is complete once no photo has joined it for this long.
    album_quiet_s: float = 1.5
    # An update whose reply Telegram didn't take (5xx, repeated 429, network) is tried again
    # after these pauses, the last one repeating, until it goes through or fails for good.
    retry_delays_s: tuple[float, ...] = (10.0, 60.0, 300.0, 1800.0)
    # A group photo the queue had no room for is tried again after these, within busy_give_up_s.
    busy_retry_delays_s: tuple[float, ...] = (5.0, 20.0, 60.0, 120.0, 300.0)
    busy_give_up_s: float = 600.0
    # The same /read or /describe of a picture answered this recently points to that answer,
    # rather than sending it again.
    repeat_window_s: float = 600.0
    # Who is an admin, as Telegram said (getChatMember), is believed this long.
    member_cache_s: float = 60.0
    # The database forgets what is past its time this often while the bot runs.
    prune_every_s: float = 3600.0
    # getUpdates long polling, and the pauses between tries while Telegram can't be reached.
    poll_timeout_s: float = 10.0
    reconnect_delays_s: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


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
    engine = EngineSettings.from_env(env_file=env_file)
    return bot, engine
