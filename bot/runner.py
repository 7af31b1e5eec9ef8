"""The bot's life: connect, load, replay, take updates, watch its parts, stop cleanly.

    start: database -> Telegram (getMe, retried while it can't be reached; a rejected token
           stops at once) -> the models -> replay the journal -> updates in (polling or
           webhook) -> the command menu
    run:   until SIGTERM / Ctrl-C, or a part dies (the database stays unavailable, the model
           thread stops): then one log line, and exit status 1 for a supervisor to restart
    stop:  stop taking updates -> give the work in flight SHUTDOWN_GRACE_S to finish ->
           stop the models (what is left fails as Stopped and stays journaled) -> close the
           database and every connection, whichever step start-up had reached

The same Runner drives ``python -m bot`` and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from telegram.error import InvalidToken, TelegramError
from telegram.ext import Application

from captioning import EngineSettings

if TYPE_CHECKING:
    from captioning.serving.executor import Executor

from .app import register_commands
from .context import Services
from .health import HealthServer
from .settings import BotSettings
from .updates.intake import Poller, Webhook, WebhookRefused, with_retries

__all__ = ["Runner", "TokenRejected"]

log = logging.getLogger(__name__)


class TokenRejected(Exception):
    """Telegram said the token is not a bot's (401/404)."""


class Runner:
    def __init__(self, application: Application) -> None:
        self.application = application
        self.svc: Services = application.bot_data
        self.svc.fatal = self.fatal
        self.exit_code = 0
        self._stop_requested = asyncio.Event()
        self._intake: Poller | Webhook | None = None
        self._health: HealthServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._app_started = False
        self._stopped = False

    # -- the whole life, for python -m bot -------------------------------------------------

    async def run(self) -> int:
        """Start, serve until asked to stop (or a part dies), stop; the exit status.

        Start-up errors (a rejected token, models that can't be loaded, an unusable
        database) are raised after everything opened so far is closed again.
        """
        starting = asyncio.create_task(self.start())
        stopping = asyncio.create_task(self._stop_requested.wait())
        try:
            done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if starting in done:
                starting.result()
                await stopping
            else:
                starting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await starting
        finally:
            stopping.cancel()
            await self.stop()
        return self.exit_code

    def request_stop(self) -> None:
        """SIGTERM, Ctrl-C: stop taking updates, finish or keep what is in flight, exit 0."""
        self._stop_requested.set()

    def fatal(self, error: BaseException) -> None:
        """A part of the bot died and it can't go on: stop, with a non-zero exit status."""
        if self._stop_requested.is_set():
            return
        if isinstance(error, (InvalidToken, TokenRejected)):
            self.exit_code = 2
            log.error("Stopping: Telegram rejected TELEGRAM_BOT_TOKEN; check it with @BotFather.")
        elif isinstance(error, WebhookRefused):
            self.exit_code = 2
            log.error("Stopping: Telegram refused WEBHOOK_URL (%s); fix the setting. Exit status 2.", error)
        else:
            self.exit_code = 1
            log.error("Stopping: %s. Exit status 1, for a supervisor to restart the bot.", _say(error))
        self._stop_requested.set()

    # -- start -----------------------------------------------------------------------------

    async def start(self) -> None:
        svc, settings, timings = self.svc, self.svc.settings, self.svc.timings
        await svc.store.open()
        where = settings.telegram_api_url
        try:
            await with_retries(
                self.application.initialize, "connect", where, timings, self._stop_requested.is_set
            )
        except InvalidToken as exc:
            raise TokenRejected(str(exc)) from exc
        svc.journal.attach(self.application.update_queue, self.application.bot)
        if settings.metrics_port is not None:
            self._start_health(settings.metrics_port)
        if svc.describer is None:
            svc.owned_executor = _executor(settings, svc.engine_settings)
            self._serve_metrics(svc.owned_executor)
            log.info("Loading the models (%s backend)...", settings.caption_backend)
            await svc.owned_executor.start()
            svc.describer = svc.owned_executor
        else:
            self._serve_metrics(svc.describer)
        await svc.journal.replay()
        await self.application.start()
        self._app_started = True
        self._intake = self._make_intake(where)
        await self._intake.start()
        try:
            await register_commands(self.application)
        except TelegramError as exc:  # the menu is a convenience; the bot works without it
            log.warning("Couldn't register the command menu: %s", exc)
        self._tasks = [
            asyncio.create_task(self._supervise(), name="supervise"),
            asyncio.create_task(self._prune(), name="prune"),
        ]
        log.info("Bot @%s is ready", self.application.bot.username)

    def _make_intake(self, where: str) -> Poller | Webhook:
        svc, settings = self.svc, self.svc.settings
        app = self.application
        if settings.webhook_url:
            secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
            return Webhook(
                app.bot,
                svc.journal,
                app.update_queue,
                svc.timings,
                url=settings.webhook_url,
                listen=settings.webhook_listen,
                port=settings.webhook_port,
                # The local server answers on the path of the public URL (behind a proxy, say).
                path=urlsplit(settings.webhook_url).path,
                secret=secret or secrets.token_urlsafe(32),
                where=where,
                on_fatal=self.fatal,
            )
        return Poller(app.bot, svc.journal, app.update_queue, svc.timings, where=where, on_fatal=self.fatal)

    def _start_health(self, port: int) -> None:
        settings = self.svc.settings
        self._health = HealthServer(settings.metrics_host, port, self.parts).start()
        log.info("Serving /metrics and /healthz on %s:%d", settings.metrics_host, self._health.port)

    def _serve_metrics(self, describer: object) -> None:
        metrics = getattr(describer, "metrics", None)
        if self._health is not None and metrics is not None:
            self._health.registries.append(metrics.registry)

    @property
    def health_port(self) -> int | None:
        return self._health.port if self._health is not None else None

    def parts(self) -> dict[str, str | None]:
        """Each part that can die, and what is wrong with it (None: well)."""
        svc = self.svc
        parts: dict[str, str | None] = {}
        if self._intake is None:
            parts["updates"] = "starting"
        elif not self._intake.alive:
            parts["updates"] = "stopped"
        else:
            parts["updates"] = getattr(self._intake, "problem", None)  # a webhook not registered yet
        describer = svc.describer or svc.owned_executor
        if describer is None or not getattr(describer, "ready", True):
            parts["models"] = "loading"
        else:
            parts["models"] = getattr(describer, "problem", lambda: None)()
        if svc.store.healthy:
            parts["database"] = None
        else:
            parts["database"] = f"unavailable ({svc.store.trouble or 'not open'})"
        return parts

    async def _supervise(self) -> None:
        """A part that dies stops the bot, rather than leave it looking alive and answering nobody."""
        while True:
            await asyncio.sleep(1.0)
            executor = self.svc.owned_executor
            if executor is not None and executor.ready and not executor.alive:
                self.fatal(RuntimeError("the model thread stopped"))
            if self._intake is not None and not self._intake.alive:
                self.fatal(RuntimeError("taking updates from Telegram stopped"))

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(self.svc.timings.prune_every_s)
            with contextlib.suppress(Exception):  # a locked database now: next time, then
                gone = await self.svc.store.prune()
                log.debug("Pruned the database: %s", gone)

    # -- stop ------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Undo whatever start() did, in reverse; safe to call at any point, and twice."""
        if self._stopped:
            return
        self._stopped = True
        svc, app = self.svc, self.application
        for task in self._tasks:
            task.cancel()
        if self._intake is not None:
            await self._intake.stop()
        svc.stopping.set()
        svc.journal.stop()
        for task in list(svc.background):
            task.cancel()
        if self._app_started:
            log.info(
                "Shutting down: finishing the work in flight (up to %.0f s)", svc.settings.shutdown_grace_s
            )
            # Work in flight gets a while to finish; what doesn't stays in the journal.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(app.update_queue.join(), svc.settings.shutdown_grace_s)
        if svc.owned_executor is not None:
            await svc.owned_executor.stop()
        if self._app_started:
            await app.stop()
        if self._health is not None:
            self._health.stop()
        await app.shutdown()
        for request in svc.requests:  # also when start-up never got as far as getMe
            await request.shutdown()
        await svc.store.close()


def _executor(settings: BotSettings, engine_settings: EngineSettings | None) -> Executor:
    """The same queue, fairness and back-pressure in front of either backend."""
    from captioning.serving.executor import Executor

    engine_settings = engine_settings or EngineSettings.from_env()
    if settings.caption_backend == "ray":
        from captioning.serving.ray_backend import RayBackend

        def connect() -> RayBackend:
            backend = RayBackend(
                settings.ray_address,
                app_name=settings.ray_app_name,
                auth_token=settings.ray_auth_token.get_secret_value() if settings.ray_auth_token else None,
                batch_timeout_s=engine_settings.request_timeout_s,
            )
            backend.connect()  # if the cluster is away, pictures get "busy" until it's back
            return backend

        return Executor(engine_settings, engine_factory=connect, warmup=False)
    return Executor(engine_settings)


def _say(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text
