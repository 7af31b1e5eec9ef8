"""The Telegram side: photos in, descriptions in each chat's languages out. Never imports torch."""

from .app import build_application
from .runner import Runner
from .settings import BotSettings, Timings, load_settings

__all__ = ["BotSettings", "Runner", "Timings", "build_application", "load_settings"]
