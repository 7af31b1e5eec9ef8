"""The executor: batching, fairness, back-pressure, failure isolation, with plain fake engines."""

from __future__ import annotations

import asyncio
import threading

import pytest

from captioning import Description, InferenceError, InvalidImage, QueueFull, RequestTimeout, TooManyQueued
from captioning.executor import Executor
from captioning.questions import Question
from captioning.settings import EngineSettings
from tests import pictures
from tests.tiny_models import caption_for, translation_for


class FakeEngine:
    """Names in, names out: picture b"x" is described as ("x", "x!"). Records every batch."""

    input_size = 32

    def __init__(self, fail_on: bytes | None = None, oom_above: int | None = None) -> None:
        self.batches: list[list[bytes]] = []
        self.kinds: list[str] = []
        self.threads: set[str] = set()
        self.decode_threads: set[str] = set()
        self.gate = threading.Event()
        self.gate.set()
        self.fail_on, self.oom_above = fail_on, oom_above

    def prepare(self, picture):
        self.decode_threads.add(threading.current_thread().name)
        if picture == b"bad":
            raise InvalidImage("The file is empty.", "empty")
        return picture

    def describe(self, prepared, detailed=False):
        self.threads.add(threading.current_thread().name)
        self.gate.wait(10)
        if self.oom_above and len(prepared) > self.oom_above:
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.fail_on in prepared:
            raise RuntimeError("the model broke on this batch")
        self.batches.append(list(prepared))
        self.kinds.append("detailed" if detailed else "description")
        return [Description(p.decode() if isinstance(p, bytes) else "warm", "!") for p in prepared]

    def answer(self, prepared, questions):
        self.gate.wait(10)
        self.batches.append(list(prepared))
        self.kinds.append("answer")
        return [
            Description(f"{p.decode()}: {q.text}", q.language)
            for p, q in zip(prepared, questions, strict=True)
        ]


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
    while not engine.threads:
        await asyncio.sleep(0.01)
    return first


async def test_pictures_that_arrive_together_are_described_together(started):
    engine = FakeEngine()
    executor = await started(engine, max_batch_size=8, max_batch_wait_ms=200)
    results = await asyncio.gather(*(executor.describe(f"p{i}".encode(), lane=i) for i in range(6)))
    assert [r.english for r in results] == [f"p{i}" for i in range(6)]
    assert [len(b) for b in engine.batches] == [6]


async def test_batches_never_exceed_the_ceiling(started):
    engine = FakeEngine()
    executor = await started(engine, max_batch_size=4)
    first = await hold(engine, executor)
    tickets = [executor.submit(f"p{i}".encode(), lane=i) for i in range(10)]
    await asyncio.sleep(0.1)
    engine.gate.set()
    await asyncio.gather(first.result(), *(t.result() for t in tickets))
    assert [len(b) for b in engine.batches] == [1, 4, 4, 2]


async def test_chats_are_served_in_turn_not_in_arrival_order(started):
    engine = FakeEngine()
    executor = await started(engine, max_batch_size=2)
    first = await hold(engine, executor)
    album = [executor.submit(f"a{i}".encode(), lane="album") for i in range(5)]
    await asyncio.sleep(0.05)
    single = [executor.submit(b"b0", lane="bob"), executor.submit(b"c0", lane="carol")]
    await asyncio.sleep(0.05)
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
    assert (await executor.describe(b"again", owner="ana")).english == "again"  # room once served


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
    assert executor._in_flight == 0
    await executor.describe(b"fits again")


async def test_a_failing_batch_is_split_so_neighbours_still_get_answers(started):
    engine = FakeEngine(fail_on=b"poison")
    executor = await started(engine, max_batch_size=8)
    first = await hold(engine, executor)
    names = [b"a", b"b", b"poison", b"c", b"d"]
    tickets = [executor.submit(n, lane=i) for i, n in enumerate(names)]
    await asyncio.sleep(0.05)
    engine.gate.set()
    await first.result()
    results = await asyncio.gather(*(t.result() for t in tickets), return_exceptions=True)
    assert [r.english for r in results if isinstance(r, Description)] == ["a", "b", "c", "d"]
    assert isinstance(results[2], InferenceError) and "went wrong" in str(results[2])
    assert metric(executor, "captioning_errors_total", reason="inference") == 1


async def test_out_of_memory_splits_the_batch_and_lowers_the_ceiling(started):
    engine = FakeEngine(oom_above=2)
    executor = await started(engine, max_batch_size=8)
    first = await hold(engine, executor)
    tickets = [executor.submit(f"p{i}".encode(), lane=i) for i in range(8)]
    await asyncio.sleep(0.05)
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
    await asyncio.sleep(0.05)
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
    await asyncio.gather(*(executor.describe(f"p{i}".encode()) for i in range(4)))
    assert engine.threads == {"models"}
    assert all(name.startswith("decode") for name in engine.decode_threads)


async def test_start_warms_up_and_then_reports_ready():
    engine = FakeEngine()
    executor = Executor(settings(), engine_factory=lambda: engine)
    assert not executor.ready
    await executor.start()
    try:
        assert executor.ready and metric(executor, "captioning_ready") == 1
        assert [len(b) for b in engine.batches] == [2]  # the warm-up batch
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
            *(executor.describe(pictures.jpeg(c), lane=i) for i, c in enumerate(colors))
        )
    finally:
        await executor.stop()
    assert results == [Description(caption_for(c), translation_for(c)) for c in colors]
    # The warm-up, then the eight together (or nearly).
    assert metric(executor, "captioning_batch_size_count") <= 3


async def test_each_kind_of_request_gets_a_forward_pass_of_its_own(started):
    engine = FakeEngine()
    executor = await started(engine, max_batch_size=8)
    first = await hold(engine, executor)
    tickets = [
        executor.submit(b"a", lane=1),
        executor.submit(b"b", lane=2, question=Question("what color is it?")),
        executor.submit(b"c", lane=3, detailed=True),
        executor.submit(b"d", lane=4, question=Question("¿de qué color es?", "es")),
        executor.submit(b"e", lane=5),
    ]
    await asyncio.sleep(0.05)
    engine.gate.set()
    await first.result()
    results = await asyncio.gather(*(t.result() for t in tickets))
    assert [r.english for r in results] == ["a", "b: what color is it?", "c", "d: ¿de qué color es?", "e"]
    assert results[3].spanish == "es"  # the question travelled with its language
    # After the held picture: one batch of five, generated as three passes.
    assert list(zip(engine.kinds[1:], engine.batches[1:], strict=True)) == [
        ("description", [b"a", b"e"]),
        ("answer", [b"b", b"d"]),
        ("detailed", [b"c"]),
    ]


async def test_the_real_engine_answers_questions_batched_with_descriptions(engine):
    executor = Executor(settings(max_batch_size=8, max_batch_wait_ms=100), engine_factory=lambda: engine)
    await executor.start()
    try:
        asked = [
            ("red", Question("what color is it?")),
            ("blue", None),
            ("yellow", Question("¿de qué color es?", "es")),
            ("green", Question("is it a square?")),
            ("white", Question("¿es un cuadrado?", "es")),
        ]
        results = await asyncio.gather(
            *(
                executor.submit(pictures.jpeg(c), lane=i, question=q).result()
                for i, (c, q) in enumerate(asked)
            )
        )
    finally:
        await executor.stop()
    assert results == [
        Description("red", "rojo"),
        Description(caption_for("blue"), translation_for("blue")),
        Description("yellow", "amarillo"),
        Description("yes", "sí"),
        Description("yes", "sí"),
    ]
