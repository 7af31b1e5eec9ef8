"""Updates in from Telegram, journaled before Telegram hears they arrived.

Two ways in, one rule: an update is written to the journal, and only then confirmed.

* :class:`Poller` (long polling): Telegram forgets the updates below the ``offset`` of the
  next ``getUpdates``, so the offset moves past an update only once it is journaled. Each
  update is read on its own from Telegram's JSON: one that python-telegram-bot can't parse is
  journaled and set aside, never refetched forever. While Telegram can't be reached, one
  line per backoff step says so, and where (the URL without the token).
* :class:`Webhook`: Telegram's POST is answered 200 only once the update is journaled. The
  server listens on the loopback by default (a TLS proxy sits in front), refuses bodies over
  :data:`MAX_UPDATE_BYTES` before reading them, and checks the secret header before anything.

A database that stays unavailable (:class:`~bot.store.StoreUnavailable`) is fatal: nothing
is confirmed, and the runner stops the bot with exit status 1 for its supervisor to restart.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import warnings
from collections.abc import Callable
from typing import Any

from aiohttp import web
from telegram import Bot
from telegram.error import (
    BadRequest,
    Conflict,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning, PTBUserWarning

from ..settings import Timings
from .journal import Journal

__all__ = ["MAX_UPDATE_BYTES", "Poller", "Webhook", "WebhookRefused", "with_retries"]

log = logging.getLogger(__name__)

# An update is a few kilobytes; a body far larger than any update is refused unread.
MAX_UPDATE_BYTES = 1024 * 1024

# getUpdates is called for its raw JSON on purpose (each update is parsed on its own, so one
# odd update can't block the rest): python-telegram-bot's advice to call get_updates instead
# doesn't apply.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)


class Poller:
    """Long polling: getUpdates -> journal -> queue -> confirm (the next offset)."""

    def __init__(
        self,
        bot: Bot,
        journal: Journal,
        queue: asyncio.Queue[object],
        timings: Timings,
        *,
        where: str,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.bot, self.journal, self.queue, self.timings = bot, journal, queue, timings
        self.where, self.on_fatal = where, on_fatal
        self.offset = 0
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="poller")

    async def stop(self) -> None:
        """Stop fetching; Telegram hears once more which updates arrived (all journaled)."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.offset:
            try:
                await self.bot.do_api_request("getUpdates", api_kwargs={"offset": self.offset, "timeout": 0})
            except TelegramError as exc:
                # Telegram hands them out again at the next start: the journal knows them
                # (done, or pending and replayed), and none is handled twice.
                log.info("Couldn't confirm the last updates to Telegram (%s)", exc)

    async def _run(self) -> None:
        try:
            await with_retries(
                lambda: self.bot.delete_webhook(),
                "remove a webhook",
                self.where,
                self.timings,
                lambda: self._stopping,
            )
            log.info("Polling Telegram for updates")
            failures = 0
            while not self._stopping:
                try:
                    updates = await self.bot.do_api_request(
                        "getUpdates",
                        api_kwargs={"offset": self.offset, "timeout": int(self.timings.poll_timeout_s)},
                        read_timeout=self.timings.poll_timeout_s + 10,
                    )
                except (NetworkError, TimedOut, Conflict, RetryAfter) as exc:
                    delay = _delay(exc, failures, self.timings)
                    _log_unreachable(exc, "fetch updates", self.where, delay, failures)
                    failures += 1
                    await asyncio.sleep(delay)
                    continue
                if failures:
                    log.info("Telegram can be reached again")
                    failures = 0
                for raw in updates or []:
                    update = await self.journal.received(raw)  # StoreUnavailable: fatal, nothing confirmed
                    if update is not None:
                        await self.queue.put(update)
                    self.offset = raw["update_id"] + 1
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a rejected token, an unusable database: the runner stops the bot
            self.on_fatal(exc)


class WebhookRefused(Exception):
    """Telegram won't post to WEBHOOK_URL (a host it can't resolve or reach, a bad
    certificate): a setting to fix, not a failure to restart into."""


class Webhook:
    """Telegram posts updates here; each is journaled before the 200. Until Telegram has taken
    the webhook, :attr:`problem` says so: /healthz is not "ok" while no update can come."""

    def __init__(
        self,
        bot: Bot,
        journal: Journal,
        queue: asyncio.Queue[object],
        timings: Timings,
        *,
        url: str,
        listen: str,
        port: int,
        path: str,
        secret: str,
        where: str,
        on_fatal: Callable[[BaseException], None],
    ) -> None:
        self.bot, self.journal, self.queue, self.timings = bot, journal, queue, timings
        self.url, self.listen, self.port, self.path, self.secret = (
            url,
            listen,
            port,
            "/" + path.strip("/"),
            secret,
        )
        self.where, self.on_fatal = where, on_fatal
        self._runner: web.AppRunner | None = None
        self._registering: asyncio.Task[None] | None = None
        self.problem: str | None = "not registered with Telegram yet"

    @property
    def alive(self) -> bool:
        return self._runner is not None and bool(self._runner.sites)

    def _failing(self, reason: str) -> None:
        self.problem = f"can't register the webhook with Telegram ({reason})"

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_UPDATE_BYTES)
        app.router.add_post(self.path, self._receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.listen, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("Listening for Telegram's updates on %s:%d%s", self.listen, self.port, self.path)
        self._registering = asyncio.create_task(self._register())

    async def _register(self) -> None:
        try:
            await with_retries(
                lambda: self.bot.set_webhook(self.url, secret_token=self.secret, allowed_updates=None),
                "register the webhook",
                self.where,
                self.timings,
                lambda: self._runner is None,
                on_failure=self._failing,
                final=(BadRequest,),  # a NetworkError to python-telegram-bot, but no retry mends it
            )
            self.problem = None
        except asyncio.CancelledError:
            raise
        except BadRequest as exc:  # "bad webhook: Failed to resolve host", and the like
            self.on_fatal(WebhookRefused(exc.message))
        except BaseException as exc:
            self.on_fatal(exc)

    async def stop(self) -> None:
        if self._registering is not None:
            self._registering.cancel()
            await asyncio.gather(self._registering, return_exceptions=True)
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        # Cheap checks first: size from the header, then the secret, and only then the body.
        if request.content_length is not None and request.content_length > MAX_UPDATE_BYTES:
            return web.Response(status=413)
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=403)
        try:
            raw = json.loads(await request.read())
            int(raw["update_id"])
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413)
        except (ValueError, TypeError, KeyError):
            return web.Response(status=400)
        try:
            update = await self.journal.received(raw)
        except Exception as exc:  # the database: Telegram keeps the update and posts it again
            self.on_fatal(exc)
            return web.Response(status=503)
        if update is not None:
            await self.queue.put(update)
        return web.Response()


async def with_retries(
    call: Callable[[], Any],
    what: str,
    where: str,
    timings: Timings,
    stopping: Callable[[], bool],
    *,
    on_failure: Callable[[str], None] | None = None,
    final: tuple[type[BaseException], ...] = (),
) -> Any:
    """``call()``, tried again while Telegram can't be reached (each failure's reason told to
    ``on_failure``); a rejected token, and the ``final`` errors, are raised."""
    failures = 0
    while True:
        try:
            return await call()
        except InvalidToken:
            raise
        except final:
            raise
        except (NetworkError, TimedOut, RetryAfter) as exc:
            if stopping():
                raise
            delay = _delay(exc, failures, timings)
            reason = _log_unreachable(exc, what, where, delay, failures)
            if on_failure is not None:
                on_failure(reason)
            failures += 1
            await asyncio.sleep(delay)


def _delay(exc: BaseException, failures: int, timings: Timings) -> float:
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():  # an int today, a timedelta in a later release
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            wait = exc.retry_after
        return wait if isinstance(wait, (int, float)) else wait.total_seconds()
    delays = timings.reconnect_delays_s
    return delays[min(failures, len(delays) - 1)]


def _log_unreachable(exc: BaseException, what: str, where: str, delay: float, failures: int) -> str:
    if isinstance(exc, Conflict):
        reason = "another process is getting this bot's updates (two copies running?)"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    log.warning("Can't reach Telegram at %s to %s (%s); trying again in %.0f s", where, what, reason, delay)
    return reason
