"""The async face of the engine: dynamic batching, fair queueing, back-pressure.

    submit(picture or download, task) -> room? (quotas) -> download (byte budget)
        -> decode on a CPU thread -> FairQueue (a lane per chat)
        -> the model thread takes a batch -> backend.run(kind, pictures, tasks) -> futures resolved

* **One thread owns the models.** CUDA work from one thread keeps the device's state simple
  and its kernels in order; the event loop only awaits futures.
* **Tasks are values.** A batch is split by ``task.kind`` and each part goes to
  ``backend.run(kind, ...)``; the executor never looks at what a task asks for.
* **Room is checked before the download.** ``submit`` says :class:`Busy` at once, before a
  byte is fetched; then the download waits for room in the byte budget
  (``MAX_DOWNLOAD_MB_IN_FLIGHT``), so a flood of large files can't fill the memory.
* **Decoding runs on other threads**, so the model thread never waits on JPEG decoding, and
  the next batch is decoded while the current one is captioned and translated.
* **Batches form by themselves**: the model thread takes what is waiting, up to the batch
  ceiling, holding the batch open at most MAX_BATCH_WAIT_MS for more.
* **Fair**: chats are served in turn; each person may have MAX_QUEUED_PER_USER pictures
  waiting; all in all MAX_QUEUE. Past either, :class:`Busy` says "try again shortly".
* **Failure isolation** (:mod:`.batches`): a batch that fails, or whose backend returns the
  wrong number of results, is split in halves and retried, down to one picture, so one bad
  request never fails its neighbours and never stops the model thread. Out of memory also
  lowers the ceiling for every later batch.
* **Capabilities pass through**: what the backend can do (:class:`~captioning.Capabilities`)
  is the backend's own value, handed on as it is.

Importing this module does not import torch: the engine loads in :meth:`Executor.start`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..capabilities import Capabilities
from ..errors import InferenceError, QueueFull, RequestTimeout, Stopped, TooManyQueued
from ..settings import EngineSettings
from ..tasks import Describe, Task
from .batches import run_isolated
from .budgets import ByteBudget
from .fairqueue import FairQueue
from .metrics import ExecutorMetrics

__all__ = ["Backend", "Executor", "Fetch", "Ticket"]

log = logging.getLogger(__name__)

Fetch = Callable[[], Awaitable[bytes | bytearray]]
# What a download is assumed to weigh when its size isn't known beforehand.
UNKNOWN_SIZE = 2 * 1024 * 1024


class Backend(Protocol):
    """What the executor drives: the local :class:`~captioning.engine.Engine`, or a remote one.

    ``run`` maps N prepared pictures and N tasks of one kind to N results; a result may be an
    exception that belongs to that picture alone (a remote replica's InvalidImage, say).
    ``problem`` says what is wrong with it, for /healthz (None: nothing).
    """

    @property
    def capabilities(self) -> Capabilities: ...

    def prepare(self, picture: bytes | bytearray | None, task: Any) -> Any: ...

    def run(self, kind: str, pictures: list[Any], tasks: list[Any]) -> list[Any]: ...

    def problem(self) -> str | None: ...

    def warm_up(self) -> float: ...


@dataclass(eq=False)
class _Request:
    lane: Hashable
    owner: Hashable
    task: Task
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    size: int | None = None
    arrived: float = field(default_factory=time.monotonic)
    data: bytes | bytearray | None = None  # the picture's bytes, only until they are decoded
    prepared: Any = None
    pipeline: asyncio.Task[None] | None = None
    queued: bool = False
    finished: bool = False


class Ticket:
    """One picture's place in the executor: await :meth:`result`, ask :meth:`position`."""

    def __init__(self, executor: Executor, request: _Request) -> None:
        self._executor, self._request = executor, request

    def position(self) -> int:
        """1 if this picture is in the next batch, 2 after that, ...; 0 once it is being worked on."""
        request = self._request
        if request.finished:
            return 0
        if not request.queued:  # still downloading or decoding: behind everything already waiting
            return len(self._executor._queue) + 1
        return self._executor._queue.position(request.lane, request)

    async def result(self, timeout: float | None = None) -> Any:
        """The task's result; raises what the download raised, InvalidImage, InferenceError,
        RequestTimeout (REQUEST_TIMEOUT_S after the picture arrived, or ``timeout`` from now),
        or Stopped."""
        if timeout is None:
            deadline = self._request.arrived + self._executor.settings.request_timeout_s
            timeout = max(0.0, deadline - time.monotonic())
        try:
            return await asyncio.wait_for(asyncio.shield(self._request.future), timeout)
        except TimeoutError:
            self._executor._timed_out(self._request)
            raise RequestTimeout("Describing this picture took too long; please try again later.") from None

    async def late(self) -> Any:
        """The result of a task whose :meth:`result` timed out while the models were on it: it
        finishes all the same, and its work is worth keeping (a cache). Raises CancelledError
        for a task dropped before the models took it."""
        return await asyncio.shield(self._request.future)


class Executor:
    """Runs tasks on pictures; ``await start()`` first, ``await stop()`` last."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        engine_factory: Callable[[], Backend] | None = None,
        decode_threads: int | None = None,
        warmup: bool = True,
        metrics: ExecutorMetrics | None = None,
    ) -> None:
        self.settings = settings or EngineSettings.from_env()
        self.metrics = metrics or ExecutorMetrics()
        self._engine_factory = engine_factory
        self._warmup = warmup
        self._engine: Backend | None = None
        self._queue: FairQueue[_Request] = FairQueue()
        self._decoders = ThreadPoolExecutor(
            max_workers=decode_threads or min(4, os.cpu_count() or 1), thread_name_prefix="decode"
        )
        self._requests: set[_Request] = set()
        self._per_owner: collections.Counter[Hashable] = collections.Counter()
        self._bytes = ByteBudget(int(self.settings.max_download_mb_in_flight * 1024 * 1024))
        self._ceiling = self.settings.max_batch_size or 16  # the engine's own, once it is loaded
        self._model_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.ready = False
        self.metrics.queue_depth.set_function(lambda: len(self._queue))
        self.metrics.in_flight.set_function(lambda: len(self._requests))
        self.metrics.batch_ceiling.set_function(lambda: self._ceiling)
        self.metrics.bytes_in_flight.set_function(lambda: self._bytes.used)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the models (and warm them up) on the model thread, which then keeps them."""
        loop = asyncio.get_running_loop()
        loaded: asyncio.Future[None] = loop.create_future()
        self._model_thread = threading.Thread(
            target=self._run, args=(loaded, loop), name="models", daemon=True
        )
        self._model_thread.start()
        await loaded
        self.ready = True
        self.metrics.ready.set(1)

    async def stop(self) -> None:
        """Finish the batch in hand, then let the threads go. Work not yet started fails with
        :class:`Stopped`, so that its callers can keep it for later instead of waiting."""
        self.ready = False
        self.metrics.ready.set(0)
        self._stopping.set()
        self._queue.close()
        loop = asyncio.get_running_loop()
        if self._model_thread is not None and self._engine is not None:
            # (Still loading: the thread is a daemon, and loading may take minutes; leave it.)
            await loop.run_in_executor(None, self._model_thread.join)
        for request in list(self._requests):
            self._abandon(request, Stopped("The picture service is stopping."))
        await loop.run_in_executor(None, self._decoders.shutdown)

    @property
    def alive(self) -> bool:
        """False once the model thread has died: nothing queued will be answered."""
        return self._model_thread is not None and self._model_thread.is_alive()

    def problem(self) -> str | None:
        """What is wrong with the executor, for /healthz; None when it can describe pictures."""
        if not self.alive:
            return "the model thread stopped"
        return self._backend().problem()

    @property
    def capabilities(self) -> Capabilities:
        """What the backend can do: its own value, passed on unchanged."""
        return self._backend().capabilities

    def _backend(self) -> Backend:
        if self._engine is None:
            raise RuntimeError("Executor.start() has not finished")
        return self._engine

    # -- requests ----------------------------------------------------------------------------

    def submit(
        self,
        picture: bytes | Fetch | None,
        task: Task | None = None,
        *,
        lane: Hashable = None,
        owner: Hashable = None,
        size: int | None = None,
    ) -> Ticket:
        """Accept a picture, or raise :class:`Busy` at once if there is no room for it.

        ``picture`` is its bytes, or a coroutine function that downloads them: it is called
        only once there is room, so a refused picture costs no download. (None for a task on
        no picture: translating a text.) ``size`` is what the
        download will weigh, when known. ``lane`` is what turns are taken by (a chat);
        ``owner`` is whose quota it counts against (a person). Both default to one shared value.
        """
        if self._stopping.is_set():
            raise Stopped("The picture service is stopping.")
        if self._engine is None:
            raise RuntimeError("Executor.start() has not finished")
        if len(self._requests) >= self.settings.max_queue:
            self.metrics.errors.labels("queue_full").inc()
            raise QueueFull("I'm very busy right now; please send the picture again in a minute.")
        if self._per_owner[owner] >= self.settings.max_queued_per_user:
            self.metrics.errors.labels("too_many_queued").inc()
            raise TooManyQueued(
                f"You already have {self._per_owner[owner]} pictures waiting; "
                "please wait for their descriptions before sending more."
            )
        loop = asyncio.get_running_loop()
        request = _Request(lane, owner, task or Describe(), loop.create_future(), loop, size=size)
        self._requests.add(request)
        self._per_owner[owner] += 1
        request.future.add_done_callback(lambda _: self._release(request))
        request.pipeline = loop.create_task(self._intake(request, picture))
        return Ticket(self, request)

    async def _intake(self, request: _Request, picture: bytes | Fetch | None) -> None:
        """Download (within the byte budget), decode on a CPU thread, queue for the models."""
        if picture is None:  # a task on no picture (translating a text read before): no decoding
            request.queued = True
            self._queue.put(request.lane, request)
            return
        try:
            if callable(picture):
                await self._bytes.acquire(request, request.size or UNKNOWN_SIZE)
                data = await picture()
            else:
                data = picture
            self._bytes.resize(request, len(data))
            request.data = data
            del data, picture  # from here on the bytes live in the request, until decoded
            prepared = await request.loop.run_in_executor(self._decoders, self._prepare, request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the download's failure, or InvalidImage: this picture's own
            if not request.future.done():
                self.metrics.errors.labels(getattr(exc, "reason", type(exc).__name__)).inc()
                request.future.set_exception(exc)
            return
        if request.future.done():  # timed out or stopped meanwhile
            return
        if not isinstance(prepared, (bytes, bytearray)):
            self._bytes.release(request)  # decoded: the bytes are gone (a remote backend keeps them)
        request.prepared = prepared
        request.queued = True
        self._queue.put(request.lane, request)

    def _prepare(self, request: _Request) -> Any:
        """On a decode thread. The work item holds the request, never the bytes themselves, so a
        request abandoned while it waits for a thread leaves no bytes behind."""
        data, request.data = request.data, None
        if data is None or request.future.done():
            return None
        return self._backend().prepare(data, request.task)

    def _timed_out(self, request: _Request) -> None:
        """A waiter gave up: a request still waiting (or downloading) is dropped; one the models
        are on is left to finish, for :meth:`Ticket.late`."""
        if request.queued and not request.future.done() and not self._queue.remove(request.lane, request):
            self.metrics.errors.labels("timeout").inc()
            return
        self._abandon(request)

    def _abandon(self, request: _Request, error: BaseException | None = None) -> None:
        """A request that timed out (or is stopped): out of the queue, its download cancelled,
        its bytes dropped."""
        self._queue.remove(request.lane, request)
        request.data = request.prepared = None
        self._bytes.release(request)
        if request.pipeline is not None and not request.pipeline.done():
            request.pipeline.cancel()
        if not request.future.done():
            if error is None:
                self.metrics.errors.labels("timeout").inc()
                request.future.cancel()
            else:
                request.future.set_exception(error)

    def _release(self, request: _Request) -> None:
        request.finished = True
        request.data = request.prepared = None
        self._bytes.release(request)
        self._requests.discard(request)
        self._per_owner[request.owner] -= 1
        if self._per_owner[request.owner] <= 0:
            del self._per_owner[request.owner]
        if not request.future.cancelled() and request.future.exception() is None:
            self.metrics.latency.observe(time.monotonic() - request.arrived)

    # -- the model thread --------------------------------------------------------------------

    def _run(self, loaded: asyncio.Future[None], loop: asyncio.AbstractEventLoop) -> None:
        try:
            engine = self._engine = self._engine_factory() if self._engine_factory else self._load()
            self._ceiling = self.settings.max_batch_size or engine.capabilities.batch_size
            if self._warmup:
                log.info("Warm-up took %.2f s", engine.warm_up())
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, loaded, None, exc)
            return
        loop.call_soon_threadsafe(_settle, loaded, None, None)
        wait_s = self.settings.max_batch_wait_ms / 1000
        while not self._stopping.is_set():
            try:
                batch = [r for r in self._queue.take(self._ceiling, wait_s) if not r.future.done()]
                # One prompt and generation setting per forward pass: each kind in a pass of its own.
                kinds: dict[str, list[_Request]] = {}
                for request in batch:
                    kinds.setdefault(request.task.kind, []).append(request)
                for kind, part in kinds.items():
                    self._run_batch(engine, kind, part)
            except Exception:  # a bug in here must not leave every later picture unanswered
                log.exception("The model thread hit an unexpected error; it carries on")

    def _load(self) -> Backend:
        from ..engine import Engine

        return Engine.load(self.settings)

    def _run_batch(self, engine: Backend, kind: str, batch: list[_Request]) -> None:
        outcomes = run_isolated(
            engine.run,
            kind,
            [r.prepared for r in batch],
            [r.task for r in batch],
            on_batch=self.metrics.observe_batch,
            on_out_of_memory=self._out_of_memory,
        )
        for request, outcome in zip(batch, outcomes, strict=True):
            # A remote backend reports a picture's own failure (bad bytes) in its place.
            if isinstance(outcome, Exception):
                reason = getattr(outcome, "reason", None)
                local = isinstance(outcome, InferenceError)
                self.metrics.errors.labels(reason or ("inference" if local else "remote")).inc()
                request.loop.call_soon_threadsafe(_settle, request.future, None, outcome)
            else:
                request.loop.call_soon_threadsafe(_settle, request.future, outcome, None)

    def _out_of_memory(self, size: int) -> None:
        self.metrics.errors.labels("out_of_memory").inc()
        self._ceiling = max(1, min(self._ceiling, size) // 2)
        log.warning("Out of memory with %d pictures; batches now hold at most %d", size, self._ceiling)


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
