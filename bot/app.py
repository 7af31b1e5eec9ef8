"""Builds the Application: its services, transport, rate limiter, update processor, and the
table of handlers (the actions' from :mod:`bot.actions`, then the kinds of message)."""

from __future__ import annotations

import logging

from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from captioning import EngineSettings

from .actions import ACTIONS, NEW
from .context import BotContext, Describer, Services
from .conversations import Conversations
from .flows import asking, buttons, commands, photos
from .flows.gathering import Albums
from .messages import CATALOG
from .permissions import Members
from .presence import Presence
from .quota import PersonQuota, limited
from .sending import DEFAULTS, LimitedBot
from .settings import BotSettings, Timings
from .store import Store
from .transport import AiohttpRequest, proxy_shown
from .updates.journal import Journal
from .updates.processor import JournalingProcessor, on_error

__all__ = ["build_application", "register_commands"]

log = logging.getLogger(__name__)

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

    Without ``describer``, the runner starts a :class:`captioning.serving.executor.Executor`
    with ``engine_settings`` (the models load then, not at import) and stops it at the end.
    ``rate_limit=False`` is for measuring the bot's own cost: Telegram itself allows about
    30 messages a second.
    """
    timings = timings or Timings()
    store = Store.in_folder(
        settings.state_dir,
        timeout_s=settings.state_db_timeout_s,
        read_text_kept_s=settings.read_text_kept_hours * 3600,
    )
    journal = Journal(store, timings)
    # Many photos in flight at once, so the engine can describe them together.
    processor = JournalingProcessor(journal, settings.concurrent_updates)
    # The same proxy (or the environment's) for calls, getUpdates and file downloads alike.
    requests = [AiohttpRequest(proxy=settings.proxy), AiohttpRequest(connections=1, proxy=settings.proxy)]
    if settings.proxy:
        log.info("Telegram is reached through the proxy %s (TELEGRAM_PROXY)", proxy_shown(settings.proxy))
    application = _builder(settings, processor, requests, rate_limit).build()
    svc: Services = application.bot_data
    processor.on_fatal = lambda error: svc.fatal(error)  # the runner's, once it is made
    svc.settings, svc.engine_settings, svc.timings = settings, engine_settings, timings
    svc.store, svc.journal, svc.actions, svc.describer = store, journal, ACTIONS, describer
    svc.requests = list(requests)
    svc.albums = Albums()
    svc.presence = Presence(application.bot, timings)
    svc.members = Members(application.bot, timings.member_cache_s)
    svc.quota = PersonQuota(settings.person_messages_per_minute)
    svc.conversations = Conversations(settings.follow_up_minutes * 60)
    for handler in [*ACTIONS.handlers(), *_message_handlers()]:
        application.add_handler(handler)
    application.add_error_handler(on_error)
    return application


def _builder(
    settings: BotSettings, processor: JournalingProcessor, requests: list[AiohttpRequest], rate_limit: bool
) -> ApplicationBuilder:
    bot = LimitedBot(
        token=settings.token,
        base_url=settings.telegram_api_url,
        base_file_url=settings.telegram_file_url,
        request=requests[0],
        get_updates_request=requests[1],
        defaults=DEFAULTS,
        # Telegram allows about 30 messages/s, and 20/min per group; on a 429 the limiter
        # waits as told and retries instead of dropping the reply.
        rate_limiter=AIORateLimiter(max_retries=3) if rate_limit else None,
    )
    return (
        ApplicationBuilder()
        .bot(bot)
        .concurrent_updates(processor)
        # Updates come in through bot.updates.intake, which journals each one before it is confirmed.
        .updater(None)
        .context_types(ContextTypes(context=BotContext, bot_data=Services))
    )


def _message_handlers() -> list[MessageHandler | CallbackQueryHandler]:
    """After the actions: any other button data, and each kind of message."""
    text = NEW & filters.TEXT & ~filters.COMMAND
    other = NEW & filters.ChatType.PRIVATE & ~filters.StatusUpdate.ALL & ~filters.COMMAND
    return [
        CallbackQueryHandler(buttons.on_unknown),  # anything else: answered, nothing done
        MessageHandler(filters.StatusUpdate.MIGRATE, commands.on_migrate),
        MessageHandler(NEW & filters.PHOTO, photos.on_photo),
        # Animations also carry a document: they must match here first.
        MessageHandler(NEW & UNSUPPORTED, photos.on_unsupported),
        MessageHandler(NEW & filters.Document.ALL, photos.on_document),
        # A reply is a question about the picture (or the bot's description of it).
        MessageHandler(text & filters.REPLY, limited(asking.on_reply_text)),
        # Not a reply, in a private chat: a follow-up question about the last picture, if asked soon.
        MessageHandler(text & filters.ChatType.PRIVATE, limited(asking.on_follow_up)),
        MessageHandler(other, commands.on_private_other),
    ]


async def register_commands(application: Application) -> None:
    """The command menu, in every catalog's language (English for everyone else)."""
    svc: Services = application.bot_data
    for language in CATALOG:
        commands_ = svc.actions.menu(language, svc.capabilities)
        await application.bot.set_my_commands(commands_, language_code=None if language == "en" else language)
