"""The executor: batching, fairness, back-pressure, failure isolation, with plain fake engines."""

from __future__ import annotations

import asyncio
import threading

import pytest

from captioning import (
    Answer,
    Capabilities,
    Describe,
    InferenceError,
    InvalidImage,
    QueueFull,
    RequestTimeout,
    Stopped,
    TooManyQueued,
    Translated,
)
from captioning.questions import Question
from captioning.serving.executor import Executor
from captioning.settings import EngineSettings
from tests.support import pictures
from tests.support.tiny_models import caption_for, translation_for
from tests.support.waiting import until


class FakeEngine:
    """Names in, names out: picture b"x" is described as "x" (translated "x!"). Records every batch."""

    capabilities = Capabilities(sizes={"describe": 32, "answer": 32}, batch_size=16)

    def __init__(self, fail_on: bytes | None = None, oom_above: int | None = None, extra: int = 0) -> None:
        self.batches: list[list[bytes]] = []
        self.kinds: list[str] = []
        self.threads: set[str] = set()
        self.decode_threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.fail_on, self.oom_above, self.extra = fail_on, oom_above, extra

    warmed = 0

    def problem(self) -> str | None:
        return None

    def warm_up(self) -> float:
        self.warmed += 1
        return 0.0

    def prepare(self, picture, task=None):
        self.decode_threads.add(threading.current_thread().name)
        if picture == b"bad":
            raise InvalidImage("The file is empty.", "empty")
        return ("decoded", bytes(picture))

    def run(self, kind, prepared, tasks):
        self.threads.add(threading.current_thread().name)
        self.gate.wait(10)
        names = [p[1] for p in prepared]
        if self.oom_above and len(names) > self.oom_above:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.fail_on in names:
            raise RuntimeError("the model broke on this batch")
        self.batches.append(names)
        self.kinds.append(kind)
        if kind == "answer":
            results = [
                Translated(f"{n.decode()}: {t.question.text}", {"asked": t.question.language})
                for n, t in zip(names, tasks, strict=True)
            ]
        else:
            results = [Translated(n.decode(), {"es": n.decode() + "!"}) for n in names]
        # A backend that breaks the contract, if asked: ``extra`` results too many, or too few.
        return results + results[: self.extra] if self.extra >= 0 else results[: self.extra]


class OutOfMemoryError(RuntimeError):
    """Named like torch.OutOfMemoryError, which the executor recognises by name."""


def metric(executor: Executor, name: str, **labels: str) -> float | None:
    return executor.metrics.registry.get_sample_value(name, labels)


def settings(**overrides) -> EngineSettings:
    values = {"max_batch_size": 4, "max_batch_wait_ms": 50, "max_queue": 100, "max_queued_per_user": 100}
    values.update(overrides)
    return EngineSettings.from_env({}).with_overrides(**values)


@pytest.fixture
async def started():
    executors = []

    async def start(engine, **overrides) -> Executor:
        executor = Executor(settings(**overrides), engine_factory=lambda: engine, warmup=False)
        await executor.start()
        executors.append(executor)
        return executor

    yield start
    for executor in executors:
        executor._engine.gate.set()  # never leave the model thread waiting on a test's gate
        await executor.stop()


async def hold(engine: FakeEngine, executor: Executor):
    """Occupy the model thread with one picture, so what follows queues up behind it."""
    engine.gate.clear()
    first = executor.submit(b"first", lane="warm")
    await until(lambda: engine.threads, "the first picture on the model thread")
    return first


async def until_queued(executor: Executor, count: int) -> None:
    """Wait until ``count`` pictures are decoded and waiting for the models: an event, where
    a sleep would let a slow machine change the batches."""
    await until(lambda: len(executor._queue) >= count, f"{count} pictures queued")


async def test_pictures_that_arrive_together_are_described_together(started):
    engine = FakeEngine()
    executor = await started(engine, max_batch_size=8)
    first = await hold(engine, executor)
    tickets = [executor.submit(f"p{i}".encode(), lane=i) for i in range(6)]
    await until_queued(executor, 6)
    engine.gate.set()
    results = await asyncio.gather(*(t.result() for t in tickets))
    await first.result()
    assert [r.english for r in results] == [f"p{i}" for i in range(6)]
    assert [len(b) for b in engine.batches] == [1, 6]


async def test_batches_never_exceed_the_ceiling(started):
    engine = FakeEngine()
    executor = await started(engine, max_batch_size=4)
    first = await hold(engine, executor)
    tickets = [executor.submit(f"p{i}".encode(), lane=i) for i in range(10)]
    await until_queued(executor, 10)
    engine.gate.set()
    await asyncio.gather(first.result(), *(t.result() for t in tickets))
    assert [len(b) for b in engine.batches] == [1, 4, 4, 2]


async def test_without_a_batch_size_set_the_engines_own_is_the_ceiling():
    engine = FakeEngine()
    engine.capabilities = Capabilities(sizes={"describe": 32}, batch_size=3)  # best for its device
    unset = EngineSettings.from_env({}).with_overrides(max_batch_wait_ms=50)
    executor = Executor(unset, engine_factory=lambda: engine, warmup=False)
    await executor.start()
    try:
        first = await hold(engine, executor)
        tickets = [executor.submit(f"p{i}".encode(), lane=i) for i in range(7)]
        await until_queued(executor, 7)
        engine.gate.set()
        await asyncio.gather(first.result(), *(t.result() for t in tickets))
    finally:
        engine.gate.set()
        await executor.stop()
    assert [len(b) for b in engine.batches] == [1, 3, 3, 1]


async def test_chats_are_served_in_turn_not_in_arrival_order(started):
    engine = FakeEngine()
    executor = await started(engine, max_batch_size=2)
    first = await hold(engine, executor)
    album = [executor.submit(f"a{i}".encode(), lane="album") for i in range(5)]
    await until_queued(executor, 5)
    single = [executor.submit(b"b0", lane="bob"), executor.submit(b"c0", lane="carol")]
    await until_queued(executor, 7)
    assert [t.position() for t in single] == [2, 3]  # bob and carol don't wait for the album
    assert [t.position() for t in album] == [1, 4, 5, 6, 7]
    engine.gate.set()
    await asyncio.gather(first.result(), *(t.result() for t in album + single))
    order = [p.decode() for batch in engine.batches[1:] for p in batch]
    assert order == ["a0", "b0", "c0", "a1", "a2", "a3", "a4"]


async def test_one_person_can_only_queue_so_many(started):
    engine = FakeEngine()
    executor = await started(engine, max_queued_per_user=3)
    first = await hold(engine, executor)
    tickets = [executor.submit(f"p{i}".encode(), owner="ana") for i in range(3)]
    with pytest.raises(TooManyQueued, match="3 pictures waiting"):
        executor.submit(b"p3", owner="ana")
    others = executor.submit(b"q", owner="ben")  # someone else still gets in
    engine.gate.set()
    await asyncio.gather(first.result(), others.result(), *(t.result() for t in tickets))
    assert (await executor.submit(b"again", owner="ana").result()).english == "again"  # room once served


async def test_a_full_queue_says_try_again_and_memory_stays_bounded(started):
    engine = FakeEngine()
    executor = await started(engine, max_queue=5)
    first = await hold(engine, executor)
    tickets = [executor.submit(f"p{i}".encode(), owner=i) for i in range(4)]
    with pytest.raises(QueueFull, match="again in a minute"):
        executor.submit(b"one too many", owner="x")
    assert metric(executor, "captioning_in_flight") == 5
    engine.gate.set()
    await asyncio.gather(first.result(), *(t.result() for t in tickets))
    assert metric(executor, "captioning_in_flight") == 0
    await executor.submit(b"fits again").result()


async def test_a_failing_batch_is_split_so_neighbours_still_get_answers(started):
    engine = FakeEngine(fail_on=b"poison")
    executor = await started(engine, max_batch_size=8)
    first = await hold(engine, executor)
    names = [b"a", b"b", b"poison", b"c", b"d"]
    tickets = [executor.submit(n, lane=i) for i, n in enumerate(names)]
    await until_queued(executor, len(names))
    engine.gate.set()
    await first.result()
    results = await asyncio.gather(*(t.result() for t in tickets), return_exceptions=True)
    assert [r.english for r in results if isinstance(r, Translated)] == ["a", "b", "c", "d"]
    assert isinstance(results[2], InferenceError) and "went wrong" in str(results[2])
    assert metric(executor, "captioning_errors_total", reason="inference") == 1


async def test_out_of_memory_splits_the_batch_and_lowers_the_ceiling(started):
    engine = FakeEngine(oom_above=2)
    executor = await started(engine, max_batch_size=8)
    first = await hold(engine, executor)
    tickets = [executor.submit(f"p{i}".encode(), lane=i) for i in range(8)]
    await until_queued(executor, 8)
    engine.gate.set()
    await first.result()
    assert [r.english for r in await asyncio.gather(*(t.result() for t in tickets))] == [
        f"p{i}" for i in range(8)
    ]
    assert executor._ceiling <= 2
    later = [executor.submit(f"q{i}".encode(), lane=i) for i in range(6)]
    await asyncio.gather(*(t.result() for t in later))
    assert all(len(b) <= 2 for b in engine.batches[-3:])
    assert metric(executor, "captioning_errors_total", reason="out_of_memory") >= 1


async def test_a_request_that_waits_too_long_times_out_and_frees_its_place(started):
    engine = FakeEngine()
    executor = await started(engine)
    first = await hold(engine, executor)
    late = executor.submit(b"late", owner="ana")
    await until_queued(executor, 1)
    with pytest.raises(RequestTimeout, match="too long"):
        await late.result(timeout=0.1)
    await asyncio.sleep(0)  # the future's done-callbacks run on the loop's next turn
    assert len(executor._queue) == 0 and executor._per_owner["ana"] == 0
    engine.gate.set()
    await first.result()
    assert b"late" not in [p for batch in engine.batches for p in batch]


async def test_a_bad_picture_fails_alone_while_decoding(started):
    engine = FakeEngine()
    executor = await started(engine)
    good, bad = executor.submit(b"good"), executor.submit(b"bad")
    assert (await good.result()).english == "good"
    with pytest.raises(InvalidImage):
        await bad.result()
    assert metric(executor, "captioning_errors_total", reason="empty") == 1


async def test_decoding_and_the_models_run_on_their_own_threads(started):
    engine = FakeEngine()
    executor = await started(engine)
    await asyncio.gather(*(executor.submit(f"p{i}".encode()).result() for i in range(4)))
    assert engine.threads == {"models"}
    assert all(name.startswith("decode") for name in engine.decode_threads)


async def test_start_warms_up_and_then_reports_ready():
    engine = FakeEngine()
    executor = Executor(settings(), engine_factory=lambda: engine)
    assert not executor.ready
    await executor.start()
    try:
        assert executor.ready and metric(executor, "captioning_ready") == 1
        assert engine.warmed == 1
    finally:
        await executor.stop()


async def test_the_real_engine_batches_concurrent_pictures(engine):
    executor = Executor(
        settings(max_batch_size=8, max_batch_wait_ms=100), engine_factory=lambda: engine, warmup=True
    )
    await executor.start()
    try:
        colors = ["red", "green", "blue", "yellow", "white", "red", "blue", "green"]
        results = await asyncio.gather(
            *(executor.submit(pictures.jpeg(c), lane=i).result() for i, c in enumerate(colors))
        )
    finally:
        await executor.stop()
    assert results == [Translated(caption_for(c), {"es": translation_for(c)}) for c in colors]


async def test_each_kind_of_request_gets_a_forward_pass_of_its_own(started):
    engine = FakeEngine()
    executor = await started(engine, max_batch_size=8)
    first = await hold(engine, executor)
    tickets = [
        executor.submit(b"a", lane=1),
        executor.submit(b"b", Answer(Question("what color is it?")), lane=2),
        executor.submit(b"c", Describe(detailed=True), lane=3),
        executor.submit(b"d", Answer(Question("¿de qué color es?", "es")), lane=4),
        executor.submit(b"e", lane=5),
    ]
    await until_queued(executor, 5)
    engine.gate.set()
    await first.result()
    results = await asyncio.gather(*(t.result() for t in tickets))
    assert [r.english for r in results] == ["a", "b: what color is it?", "c", "d: ¿de qué color es?", "e"]
    assert results[3].translations == {"asked": "es"}  # the question travelled with its language
    # After the held picture: one batch of five, run as three passes, one per kind.
    assert list(zip(engine.kinds[1:], engine.batches[1:], strict=True)) == [
        ("describe", [b"a", b"e"]),
        ("answer", [b"b", b"d"]),
        ("describe_detailed", [b"c"]),
    ]


async def test_the_real_engine_answers_questions_batched_with_descriptions(engine):
    executor = Executor(settings(max_batch_size=8, max_batch_wait_ms=100), engine_factory=lambda: engine)
    await executor.start()
    try:
        asked = [
            ("red", Answer(Question("what color is it?"))),
            ("blue", None),
            ("yellow", Answer(Question("¿de qué color es?", "es"))),
            ("green", Answer(Question("is it a square?"))),
            ("white", Answer(Question("¿es un cuadrado?", "es"))),
        ]
        results = await asyncio.gather(
            *(executor.submit(pictures.jpeg(c), task, lane=i).result() for i, (c, task) in enumerate(asked))
        )
    finally:
        await executor.stop()
    assert results == [
        Translated("red", {"es": "rojo"}),
        Translated(caption_for("blue"), {"es": translation_for("blue")}),
        Translated("yellow", {"es": "amarillo"}),
        Translated("yes", {"es": "sí"}),
        Translated("yes", {"es": "sí"}),
    ]


@pytest.mark.parametrize("extra", [1, -1], ids=["one too many", "one too few"])
async def test_a_backend_that_breaks_the_batch_contract_fails_its_batch_not_the_thread(started, extra):
    # One result too many or too few: that batch's requests fail (each alone, after the split),
    # and the model thread carries on with the next batch.
    engine = FakeEngine(extra=extra)
    executor = await started(engine)
    first = await hold(engine, executor)
    broken = [executor.submit(f"x{i}".encode(), lane=i) for i in range(2)]
    await until_queued(executor, 2)
    engine.gate.set()
    for ticket in [first, *broken]:
        with pytest.raises(InferenceError):
            await ticket.result()
    engine.extra = 0
    assert (await executor.submit(b"after").result()).english == "after"
    assert executor.alive and executor.problem() is None


async def test_room_is_checked_before_the_download(started):
    engine = FakeEngine()
    executor = await started(engine, max_queued_per_user=1)
    first = await hold(engine, executor)
    downloads: list[str] = []

    def fetch(name: bytes):
        async def download() -> bytes:
            downloads.append(name.decode())
            return name

        return download

    queued = executor.submit(fetch(b"mine"), owner="ana")
    with pytest.raises(TooManyQueued):
        executor.submit(fetch(b"one-too-many"), owner="ana")
    engine.gate.set()
    assert (await queued.result()).english == "mine"
    await first.result()
    assert downloads == ["mine"]  # the refused one was never downloaded


async def test_downloads_wait_for_room_in_the_byte_budget(started):
    engine = FakeEngine()
    executor = await started(engine, max_download_mb_in_flight=1)
    first = await hold(engine, executor)
    gates = {name: asyncio.Event() for name in ("a", "b", "c")}
    started_downloads: list[str] = []

    def fetch(name: str):
        async def download() -> bytes:
            started_downloads.append(name)
            await gates[name].wait()
            return name.encode() + b"." * (600 * 1024)  # 600 kB each: two don't fit in 1 MB

        return download

    tickets = [executor.submit(fetch(n), lane=n, size=600 * 1024) for n in ("a", "b", "c")]
    await until(  # b and c wait for room
        lambda: started_downloads and len(executor._bytes._waiters) >= 2, "a downloading, b and c waiting"
    )
    assert started_downloads == ["a"]
    assert metric(executor, "captioning_download_bytes_in_flight") == 600 * 1024
    gates["a"].set()
    await until(  # a decoded: its bytes are gone, and b may go
        lambda: len(started_downloads) >= 2, "b's download started"
    )
    assert started_downloads == ["a", "b"]
    gates["b"].set()
    gates["c"].set()
    engine.gate.set()
    await asyncio.gather(first.result(), *(t.result() for t in tickets))
    assert metric(executor, "captioning_download_bytes_in_flight") == 0


async def test_a_timed_out_request_leaves_no_bytes_behind(started):
    engine = FakeEngine()
    executor = await started(engine, decode_threads=1)
    release = threading.Event()
    engine_prepare = engine.prepare

    def slow_prepare(picture, task=None):
        release.wait(10)
        return engine_prepare(picture, task)

    engine.prepare = slow_prepare
    blocker = executor.submit(b"blocker")  # takes the only decode thread
    late = executor.submit(b"x" * 1_000_000)  # waits for a decode thread, with its bytes
    with pytest.raises(RequestTimeout):
        await late.result(timeout=0.1)
    assert late._request.data is None  # the waiting decode job holds no bytes any more
    assert metric(executor, "captioning_download_bytes_in_flight") == len(b"blocker")
    release.set()
    assert (await blocker.result()).english == "blocker"


async def test_request_timeout_s_is_every_pictures_limit(started):
    engine = FakeEngine()
    executor = await started(engine, request_timeout_s=0.2)
    await hold(engine, executor)
    late = executor.submit(b"late")
    with pytest.raises(RequestTimeout):
        await late.result()  # no timeout given: REQUEST_TIMEOUT_S applies
    engine.gate.set()


async def test_stopping_fails_what_is_still_waiting_with_stopped(started):
    engine = FakeEngine()
    executor = await started(engine)
    first = await hold(engine, executor)
    waiting = executor.submit(b"waiting")
    await until_queued(executor, 1)
    stopping = asyncio.ensure_future(executor.stop())
    await asyncio.sleep(0.05)
    engine.gate.set()
    await stopping
    assert (await first.result()).english == "first"  # the batch in hand finished
    with pytest.raises(Stopped):
        await waiting.result()
    with pytest.raises(Stopped):
        executor.submit(b"after")
