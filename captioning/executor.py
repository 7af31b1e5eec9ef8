"""The async face of the engine: dynamic batching, fair queueing, back-pressure.

    submit(picture) -> decode on a CPU thread -> FairQueue (a lane per chat)
                    -> the model thread takes a batch -> BLIP-2 + Marian -> futures resolved

Three kinds of request share the queue: a description, a detailed one ("describe again"),
and an answer to a question about the picture. Each kind is generated in a forward pass of
its own (they differ in prompt and generation settings), from the same batch.

* **One thread owns the models.** CUDA work from one thread keeps the device's state simple
  and its kernels in order; the event loop only awaits futures.
* **Decoding runs on other threads**, so the model thread never waits on JPEG decoding, and
  the next batch is decoded while the current one is captioned and translated.
* **Batches form by themselves**: the model thread takes what is waiting, up to the batch
  ceiling, holding the batch open at most MAX_BATCH_WAIT_MS for more.
* **Fair**: chats are served in turn; each person may have MAX_QUEUED_PER_USER pictures
  waiting; all in all MAX_QUEUE. Past either, :class:`Busy` says "try again shortly".
* **Failure isolation**: a batch that fails is split in halves and retried, down to one
  picture, so one bad request never fails its neighbours. Out of memory also lowers the
  ceiling for every later batch.

Importing this module does not import torch: the engine loads in :meth:`Executor.start`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .description import Description
from .errors import InferenceError, QueueFull, RequestTimeout, TooManyQueued
from .fairqueue import FairQueue
from .metrics import ExecutorMetrics
from .questions import Question
from .settings import EngineSettings

if TYPE_CHECKING:
    from .engine import Engine, PreparedPicture

__all__ = ["Backend", "Executor", "Ticket"]

log = logging.getLogger(__name__)


class Backend(Protocol):
    """What the executor drives: the local :class:`Engine`, or a remote one (Ray Serve).

    ``describe`` and ``answer`` map N prepared pictures to N results; a result may be an
    exception that belongs to that picture alone (a remote replica's InvalidImage, say).
    An answer comes as a :class:`Description`: its English and Spanish text.
    """

    input_size: int

    def prepare(self, picture: bytes) -> Any: ...

    def describe(self, pictures: list[Any], *, detailed: bool = False) -> list[Description | Exception]: ...

    def answer(self, pictures: list[Any], questions: list[Question]) -> list[Description | Exception]: ...


@dataclass(eq=False)
class _Request:
    lane: Hashable
    owner: Hashable
    future: asyncio.Future[Description]
    loop: asyncio.AbstractEventLoop
    arrived: float = field(default_factory=time.monotonic)
    detailed: bool = False
    question: Question | None = None
    prepared: PreparedPicture | None = None
    queued: bool = False
    finished: bool = False


class Ticket:
    """One picture's place in the executor: await :meth:`result`, ask :meth:`position`."""

    def __init__(self, executor: Executor, request: _Request, decoding: asyncio.Task[None]) -> None:
        self._executor, self._request, self._decoding = executor, request, decoding

    def position(self) -> int:
        """1 if this picture is in the next batch, 2 after that, ...; 0 once it is being described."""
        request = self._request
        if request.finished:
            return 0
        if not request.queued:  # still decoding: behind everything already waiting
            return len(self._executor._queue) + 1
        return self._executor._queue.position(request.lane, request)

    async def result(self, timeout: float | None = None) -> Description:
        """The description; raises InvalidImage, InferenceError or RequestTimeout."""
        timeout = self._executor.settings.request_timeout_s if timeout is None else timeout
        try:
            return await asyncio.wait_for(asyncio.shield(self._request.future), timeout)
        except TimeoutError:
            self._executor._abandon(self._request)
            raise RequestTimeout("Describing this picture took too long; please try again later.") from None


class Executor:
    """Describes pictures given as bytes; ``await start()`` first, ``await stop()`` last."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        engine_factory: Callable[[], Engine | Backend] | None = None,
        decode_threads: int | None = None,
        warmup: bool = True,
        metrics: ExecutorMetrics | None = None,
    ) -> None:
        self.settings = settings or EngineSettings.from_env()
        self.metrics = metrics or ExecutorMetrics()
        self._engine_factory = engine_factory
        self._warmup = warmup
        self._engine: Engine | Backend | None = None
        self._queue: FairQueue[_Request] = FairQueue()
        self._decoders = ThreadPoolExecutor(
            max_workers=decode_threads or min(4, os.cpu_count() or 1), thread_name_prefix="decode"
        )
        self._in_flight = 0
        self._per_owner: Counter[Hashable] = Counter()
        self._ceiling = self.settings.max_batch_size
        self._model_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.ready = False
        self.metrics.queue_depth.set_function(lambda: len(self._queue))
        self.metrics.in_flight.set_function(lambda: self._in_flight)
        self.metrics.batch_ceiling.set_function(lambda: self._ceiling)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the models (and warm them up) on the model thread, which then keeps them."""
        loaded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._model_thread = threading.Thread(
            target=self._run, args=(loaded, asyncio.get_running_loop()), name="models", daemon=True
        )
        self._model_thread.start()
        await loaded
        self.ready = True
        self.metrics.ready.set(1)

    async def stop(self) -> None:
        """Finish the batch in hand, then let the threads go. Unstarted work is abandoned."""
        self.ready = False
        self.metrics.ready.set(0)
        self._stopping.set()
        self._queue.close()
        loop = asyncio.get_running_loop()
        if self._model_thread is not None:
            await loop.run_in_executor(None, self._model_thread.join)
        await loop.run_in_executor(None, self._decoders.shutdown)

    @property
    def input_size(self) -> int:
        """The caption model's input resolution, in pixels a side."""
        if self._engine is None:
            raise RuntimeError("Executor.start() has not finished")
        return self._engine.input_size

    # -- requests ----------------------------------------------------------------------------

    def submit(
        self,
        picture: bytes,
        *,
        lane: Hashable = None,
        owner: Hashable = None,
        detailed: bool = False,
        question: Question | None = None,
    ) -> Ticket:
        """Accept a picture, or raise :class:`Busy` at once if there is no room for it.

        ``lane`` is what turns are taken by (a chat); ``owner`` is whose quota it counts
        against (a person). Both default to one shared value. ``detailed`` asks for the
        longer, beam-searched description ("describe again"); ``question`` for the answer
        to a question about the picture instead of a description.
        """
        if self._engine is None or self._stopping.is_set():
            raise RuntimeError("the executor is not running")
        if self._in_flight >= self.settings.max_queue:
            self.metrics.errors.labels("queue_full").inc()
            raise QueueFull("I'm very busy right now; please send the picture again in a minute.")
        if self._per_owner[owner] >= self.settings.max_queued_per_user:
            self.metrics.errors.labels("too_many_queued").inc()
            raise TooManyQueued(
                f"You already have {self._per_owner[owner]} pictures waiting; "
                "please wait for their descriptions before sending more."
            )
        loop = asyncio.get_running_loop()
        request = _Request(lane, owner, loop.create_future(), loop, detailed=detailed, question=question)
        self._in_flight += 1
        self._per_owner[owner] += 1
        request.future.add_done_callback(lambda _: self._release(request))
        decoding = loop.create_task(self._decode(request, picture))
        return Ticket(self, request, decoding)

    async def describe(self, picture: bytes, *, lane: Hashable = None, owner: Hashable = None) -> Description:
        """Submit one picture and wait for its description."""
        return await self.submit(picture, lane=lane, owner=owner).result()

    async def _decode(self, request: _Request, picture: bytes) -> None:
        engine = self._engine
        assert engine is not None
        try:
            request.prepared = await request.loop.run_in_executor(self._decoders, engine.prepare, picture)
        except Exception as exc:  # InvalidImage, mostly: it belongs to this request alone
            if not request.future.done():
                self.metrics.errors.labels(getattr(exc, "reason", "decode")).inc()
                request.future.set_exception(exc)
            return
        if request.future.done():  # timed out while decoding
            return
        request.queued = True
        self._queue.put(request.lane, request)

    def _abandon(self, request: _Request) -> None:
        self._queue.remove(request.lane, request)
        self.metrics.errors.labels("timeout").inc()
        if not request.future.done():
            request.future.cancel()

    def _release(self, request: _Request) -> None:
        request.finished = True
        self._in_flight -= 1
        self._per_owner[request.owner] -= 1
        if self._per_owner[request.owner] <= 0:
            del self._per_owner[request.owner]
        if not request.future.cancelled() and request.future.exception() is None:
            self.metrics.latency.observe(time.monotonic() - request.arrived)

    # -- the model thread --------------------------------------------------------------------

    def _run(self, loaded: asyncio.Future[None], loop: asyncio.AbstractEventLoop) -> None:
        try:
            self._engine = self._load()
            if self._warmup:
                self._warm_up()
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, loaded, None, exc)
            return
        loop.call_soon_threadsafe(_settle, loaded, None, None)
        wait_s = self.settings.max_batch_wait_ms / 1000
        while not self._stopping.is_set():
            batch = [r for r in self._queue.take(self._ceiling, wait_s) if not r.future.done()]
            # One prompt and generation setting per forward pass: each kind in a pass of its own.
            kinds: dict[str, list[_Request]] = {}
            for request in batch:
                kinds.setdefault(_kind(request), []).append(request)
            for part in kinds.values():
                self._describe_batch(part)

    def _load(self) -> Engine | Backend:
        if self._engine_factory is not None:
            return self._engine_factory()
        from .engine import Engine

        return Engine.load(self.settings)

    def _warm_up(self) -> None:
        """One small batch, so the first person doesn't pay for CUDA's start-up."""
        from PIL import Image

        started = time.monotonic()
        assert self._engine is not None
        grey = Image.new("RGB", (self._engine.input_size,) * 2, (128, 128, 128))
        self._engine.describe([grey, grey])
        models = getattr(self._engine, "models", None)
        if getattr(models, "question_translator", None) is not None:
            self._engine.answer([grey], [Question("¿de qué color es?", "es")])
        log.info("Warm-up batch took %.2f s", time.monotonic() - started)

    def _describe_batch(self, batch: list[_Request]) -> None:
        assert self._engine is not None
        started = time.monotonic()
        pictures = [r.prepared for r in batch]
        try:
            if batch[0].question is not None:
                descriptions = self._engine.answer(pictures, [r.question for r in batch])
            else:
                descriptions = self._engine.describe(pictures, detailed=batch[0].detailed)
        except Exception as exc:
            self._batch_failed(batch, exc)
            return
        self.metrics.batch_size.observe(len(batch))
        self.metrics.batch_seconds.observe(time.monotonic() - started)
        for request, outcome in zip(batch, descriptions, strict=True):
            # A remote backend reports a picture's own failure (bad bytes) in its place.
            if isinstance(outcome, Exception):
                self.metrics.errors.labels(getattr(outcome, "reason", "remote")).inc()
                request.loop.call_soon_threadsafe(_settle, request.future, None, outcome)
            else:
                request.loop.call_soon_threadsafe(_settle, request.future, outcome, None)

    def _batch_failed(self, batch: list[_Request], exc: Exception) -> None:
        if _is_out_of_memory(exc):
            self.metrics.errors.labels("out_of_memory").inc()
            self._ceiling = max(1, min(self._ceiling, len(batch)) // 2)
            _free_cuda_cache()
            log.warning(
                "Out of memory with %d pictures; batches now hold at most %d", len(batch), self._ceiling
            )
        if len(batch) == 1:
            [request] = batch
            self.metrics.errors.labels("inference").inc()
            log.error("Describing a picture (%s) failed", _kind(request), exc_info=exc)
            error = InferenceError("Something went wrong while describing this picture.")
            error.__cause__ = exc
            request.loop.call_soon_threadsafe(_settle, request.future, None, error)
            return
        # Retry the halves: the failure may belong to one picture, or to the batch's size.
        middle = len(batch) // 2
        self._describe_batch(batch[:middle])
        self._describe_batch(batch[middle:])


def _kind(request: _Request) -> str:
    if request.question is not None:
        return "answer"
    return "detailed" if request.detailed else "description"


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def _free_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
