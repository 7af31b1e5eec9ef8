"""The Telegram side: photos in, English and Spanish descriptions out. Never imports torch."""

from .app import build_application
from .settings import BotSettings, load_settings

__all__ = ["BotSettings", "build_application", "load_settings"]
