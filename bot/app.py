"""Builds the Application: handlers, rate limiter, and the hooks that own its resources."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from telegram import BotCommand, Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from captioning import EngineSettings

if TYPE_CHECKING:
    from captioning.executor import Executor

from . import asking, handlers
from .health import HealthServer
from .journal import LAST_GROUP, JournalingQueue, mark_done, replay_pending
from .services import KEY, Describer, Services
from .settings import BotSettings
from .store import Store
from .transport import AiohttpRequest

__all__ = ["COMMANDS", "build_application"]

log = logging.getLogger(__name__)

COMMANDS = {
    "en": [
        BotCommand("describe", "Describe the photo you reply to"),
        BotCommand("auto", "on|off: describe every photo in this chat"),
        BotCommand("lang", "en|es|both: language of the descriptions"),
        BotCommand("help", "What I do and what I keep"),
    ],
    "es": [
        BotCommand("describe", "Describe la foto a la que respondes"),
        BotCommand("auto", "on|off: describir cada foto del chat"),
        BotCommand("lang", "en|es|both: idioma de las descripciones"),
        BotCommand("help", "Qué hago y qué guardo"),
    ],
}

UNSUPPORTED = filters.Sticker.ALL | filters.ANIMATION | filters.VIDEO | filters.VIDEO_NOTE
# An edited message is not a new photo or question: answering it again would be noise.
NEW = ~filters.UpdateType.EDITED


def build_application(
    settings: BotSettings,
    engine_settings: EngineSettings | None = None,
    *,
    describer: Describer | None = None,
    rate_limit: bool = True,
) -> Application:
    """The bot, ready for ``run_polling`` or ``run_webhook``.

    Without ``describer``, ``post_init`` starts a :class:`captioning.executor.Executor` with
    ``engine_settings`` (the models load there, not at import); ``post_shutdown`` stops it.
    ``rate_limit=False`` is for measuring the bot's own cost: Telegram itself allows about
    30 messages a second.
    """
    store = Store.in_folder(settings.state_dir)
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        # Every update is journaled on its way into this queue, before Telegram hears it
        # arrived (see bot.journal): no photo is lost to a crash.
        .update_queue(JournalingQueue(store))
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_file_url)
        # Many photos in flight at once, so the engine can describe them together.
        .concurrent_updates(settings.concurrent_updates)
        .request(AiohttpRequest())
        .get_updates_request(AiohttpRequest(connections=1))
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    if rate_limit:
        # Telegram allows about 30 messages/s, and 20/min per group; on a 429 the limiter
        # waits as told and retries instead of dropping the reply.
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))
    application = builder.build()
    application.bot_data[KEY] = Services(settings, store, describer)
    application.bot_data["engine_settings"] = engine_settings

    application.add_handler(CommandHandler(["start", "help"], handlers.help_command))
    application.add_handler(CommandHandler("describe", handlers.describe_command))
    application.add_handler(CommandHandler("auto", handlers.auto_command))
    application.add_handler(CommandHandler("lang", handlers.lang_command))
    application.add_handler(CallbackQueryHandler(handlers.on_button))
    application.add_handler(MessageHandler(NEW & filters.PHOTO, handlers.on_photo))
    # Animations also carry a document: they must match here first.
    application.add_handler(MessageHandler(NEW & UNSUPPORTED, handlers.on_unsupported))
    application.add_handler(MessageHandler(NEW & filters.Document.ALL, handlers.on_document))
    text = NEW & filters.TEXT & ~filters.COMMAND
    # A reply is a question about the picture (or the bot's description of it).
    application.add_handler(MessageHandler(text & filters.REPLY, asking.on_reply_text))
    application.add_handler(MessageHandler(text & filters.ChatType.PRIVATE, handlers.on_private_text))
    application.add_handler(TypeHandler(Update, mark_done), group=LAST_GROUP)
    application.add_error_handler(handlers.on_error)
    return application


async def _post_init(application: Application) -> None:
    svc: Services = application.bot_data[KEY]
    if svc.describer is None:
        executor = _executor(svc.settings, application.bot_data["engine_settings"])
        log.info("Starting the %s caption backend...", svc.settings.caption_backend)
        await executor.start()
        svc.describer = executor
        application.bot_data["owned_executor"] = executor
    await replay_pending(application, svc.store)
    if svc.settings.metrics_port is not None:
        metrics = getattr(svc.describer, "metrics", None)
        registry = metrics.registry if metrics is not None else CollectorRegistry()
        health = HealthServer(
            svc.settings.metrics_host, svc.settings.metrics_port, registry, lambda: svc.describer.ready
        )
        application.bot_data["health"] = health.start()
        log.info("Serving /metrics and /healthz on %s:%d", svc.settings.metrics_host, health.port)
    for lang, commands in COMMANDS.items():
        await application.bot.set_my_commands(commands, language_code=None if lang == "en" else lang)
    log.info("Bot @%s is ready", application.bot.username)


def _executor(settings: BotSettings, engine_settings: EngineSettings | None) -> Executor:
    """The same queue, fairness and back-pressure in front of either backend."""
    from captioning.executor import Executor

    if settings.caption_backend == "ray":
        from captioning.ray_backend import RayBackend

        def connect() -> RayBackend:
            backend = RayBackend(settings.ray_address)
            backend.connect()  # if the cluster is away, pictures get "busy" until it's back
            return backend

        return Executor(engine_settings, engine_factory=connect, warmup=False)
    return Executor(engine_settings)


async def _post_shutdown(application: Application) -> None:
    health = application.bot_data.pop("health", None)
    if health is not None:
        health.stop()
    executor = application.bot_data.pop("owned_executor", None)
    if executor is not None:
        await executor.stop()
    application.bot_data[KEY].store.close()
