"""Builds the Application: its services, transport, rate limiter, and the table of handlers."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from captioning import EngineSettings

from . import asking, buttons, handlers, reading
from .context import BotContext, Describer, Services
from .gathering import Albums
from .journal import LAST_GROUP, Journal
from .permissions import Members
from .presence import Presence
from .settings import BotSettings, Timings
from .store import Store
from .transport import AiohttpRequest, proxy_shown

__all__ = ["build_application"]

log = logging.getLogger(__name__)

# New messages and channel posts: an edited message is not a new photo or question, and
# answering it again would be noise.
NEW = filters.UpdateType.MESSAGE | filters.UpdateType.CHANNEL_POST
UNSUPPORTED = filters.Sticker.ALL | filters.ANIMATION | filters.VIDEO | filters.VIDEO_NOTE


def build_application(
    settings: BotSettings,
    engine_settings: EngineSettings | None = None,
    *,
    describer: Describer | None = None,
    rate_limit: bool = True,
    timings: Timings | None = None,
) -> Application:
    """The bot, ready for :class:`bot.runner.Runner`.

    Without ``describer``, the runner starts a :class:`captioning.executor.Executor` with
    ``engine_settings`` (the models load then, not at import) and stops it at the end.
    ``rate_limit=False`` is for measuring the bot's own cost: Telegram itself allows about
    30 messages a second.
    """
    timings = timings or Timings()
    # The same proxy (or the environment's) for calls, getUpdates and file downloads alike.
    requests = [AiohttpRequest(proxy=settings.proxy), AiohttpRequest(connections=1, proxy=settings.proxy)]
    if settings.proxy:
        log.info("Telegram is reached through the proxy %s (TELEGRAM_PROXY)", proxy_shown(settings.proxy))
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_file_url)
        # Many photos in flight at once, so the engine can describe them together.
        .concurrent_updates(settings.concurrent_updates)
        .request(requests[0])
        .get_updates_request(requests[1])
        # Updates come in through bot.intake, which journals each one before it is confirmed.
        .updater(None)
        .context_types(ContextTypes(context=BotContext, bot_data=Services))
    )
    if rate_limit:
        # Telegram allows about 30 messages/s, and 20/min per group; on a 429 the limiter
        # waits as told and retries instead of dropping the reply.
        builder = builder.rate_limiter(AIORateLimiter(max_retries=3))
    application = builder.build()

    svc: Services = application.bot_data
    svc.settings, svc.engine_settings, svc.timings = settings, engine_settings, timings
    svc.store = Store.in_folder(settings.state_dir, timeout_s=settings.state_db_timeout_s)
    svc.journal = Journal(svc.store, timings)
    svc.albums = Albums()
    svc.presence = Presence(application.bot, timings)
    svc.members = Members(application.bot, timings.member_cache_s)
    svc.describer = describer
    svc.requests = requests

    add = application.add_handler
    add(CommandHandler(["start", "help"], handlers.help_command, filters=NEW))
    add(CommandHandler("describe", handlers.describe_command, filters=NEW))
    add(CommandHandler(["read", "leer"], reading.read_command, filters=NEW))
    add(CommandHandler("autoread", handlers.autoread_command, filters=NEW))
    add(CommandHandler("auto", handlers.auto_command, filters=NEW))
    add(CommandHandler("lang", handlers.lang_command, filters=NEW))
    actions = {
        "again": buttons.on_again,
        "delete": buttons.on_delete,
        "lang": buttons.on_lang,
        "read": reading.on_read,
        "translate": reading.on_translate,
    }
    for action, callback in actions.items():
        add(buttons.Action(callback, pattern=buttons.PATTERNS[action]))
    add(CallbackQueryHandler(buttons.on_unknown))  # anything else: answered, nothing done
    add(MessageHandler(filters.StatusUpdate.MIGRATE, handlers.on_migrate))
    add(MessageHandler(NEW & filters.PHOTO, handlers.on_photo))
    # Animations also carry a document: they must match here first.
    add(MessageHandler(NEW & UNSUPPORTED, handlers.on_unsupported))
    add(MessageHandler(NEW & filters.Document.ALL, handlers.on_document))
    text = NEW & filters.TEXT & ~filters.COMMAND
    # A reply is a question about the picture (or the bot's description of it).
    add(MessageHandler(text & filters.REPLY, asking.on_reply_text))
    other = NEW & filters.ChatType.PRIVATE & ~filters.StatusUpdate.ALL & ~filters.COMMAND
    add(MessageHandler(other, handlers.on_private_other))
    add(TypeHandler(Update, handlers.mark_done), group=LAST_GROUP)
    application.add_error_handler(handlers.on_error)
    return application
