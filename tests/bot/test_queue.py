"""The bot in front of the executor: cache, status replies, busy answers, metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import threading

import pytest

from captioning import Busy, EngineSettings, QueueFull, RequestTimeout, TooManyQueued
from captioning.serving.executor import Executor
from tests.support import pictures
from tests.support.bot_harness import FAST, fetch, running_bot
from tests.support.describers import Refusing, Wrapped, refused_first, slowed
from tests.support.fake_telegram import command
from tests.support.tiny_reader import sign
from tests.support.waiting import until, until_handled


async def test_a_picture_seen_before_is_answered_from_the_cache(telegram, executor, tmp_path):
    photo = telegram.photo(pictures.jpeg("red"))
    async with running_bot(telegram, tmp_path / "state", executor):
        await telegram.push(telegram.message(5, photo=photo))
        await telegram.wait_for("sendMessage", chat_id=5)
    # Forwarded elsewhere, after a restart: same file_unique_id, no download, no model.
    async with running_bot(telegram, tmp_path / "state", executor):
        await telegram.push(telegram.message(6, photo=photo))
        [reply] = await telegram.wait_for("sendMessage", chat_id=6)
    assert "A red square." in reply["text"]
    assert len(telegram.sent("download")) == 1
    assert executor.metrics.registry.get_sample_value("captioning_request_seconds_count") == 1


async def test_a_long_wait_gets_a_position_reply_that_becomes_the_description(telegram, executor, tmp_path):
    gate = asyncio.Event()
    timings = dataclasses.replace(FAST, status_after_s=0.2)
    async with running_bot(
        telegram, tmp_path / "state", Wrapped(executor, on_result=slowed(gate=gate)), timings=timings
    ):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("blue")))
        await telegram.push(photo)
        [status] = await telegram.wait_for("sendMessage", chat_id=5)
        gate.set()
        [edit] = await telegram.wait_for("editMessageText", chat_id=5)
    assert status["text"].startswith("Queued: your picture is number 1 in line.")
    assert status["reply_parameters"]["message_id"] == photo["message_id"]
    assert "A blue square." in edit["text"]  # one message in the chat, not two
    assert telegram.count("sendMessage", 5) == 1


@pytest.mark.parametrize(
    ("describer", "expected"),
    [
        (Refusing(QueueFull("full")), "I'm very busy right now"),
        (Refusing(TooManyQueued("yours")), "You already have several pictures waiting"),
        (Refusing(RequestTimeout("slow"), at_submit=False), "Describing this picture took too long"),
    ],
    ids=["queue-full", "too-many-queued", "timeout"],
)
async def test_busy_and_slow_get_a_clear_try_again(telegram, tmp_path, describer, expected):
    async with running_bot(telegram, tmp_path / "state", describer):
        await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg())))
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
    assert reply["text"].startswith(expected)


async def test_one_chats_album_does_not_hold_up_another_chat(telegram, engine, tmp_path):
    settings = EngineSettings.from_env({}).with_overrides(max_batch_size=1, max_queued_per_user=50)
    executor = Executor(settings, engine_factory=lambda: engine)
    await executor.start()
    try:
        async with running_bot(telegram, tmp_path / "state", Wrapped(executor, on_result=slowed(0.0))):
            for _ in range(10):
                await telegram.push(telegram.message(5, photo=telegram.photo(pictures.jpeg("red"))))
            await telegram.push(telegram.message(6, photo=telegram.photo(pictures.jpeg("blue"))))
            await telegram.wait_for("sendMessage", count=10, chat_id=5)
            await telegram.wait_for("sendMessage", chat_id=6)
    finally:
        await executor.stop()
    order = [int(c.params["chat_id"]) for c in telegram.calls if c.method == "sendMessage"]
    assert order.index(6) < 9  # served in turn, not after the whole album


async def test_metrics_and_health_are_served_on_the_metrics_port(telegram, executor, tmp_path):
    async with running_bot(telegram, tmp_path / "state", executor, metrics_port=0) as runner:
        base = f"http://127.0.0.1:{runner.health_port}"
        status, health = await asyncio.to_thread(fetch, f"{base}/healthz")
        assert status == 200, health
        assert health.splitlines() == ["updates: ok", "models: ok", "database: ok"]
        await executor.submit(pictures.jpeg("red")).result()
        _, text = await asyncio.to_thread(fetch, f"{base}/metrics")
    for name in (
        "captioning_queue_depth",
        "captioning_in_flight",
        "captioning_download_bytes_in_flight",
        "captioning_batch_size_bucket",
        "captioning_request_seconds_bucket",
        "captioning_ready 1.0",
    ):
        assert name in text


# A queue that is full: it refuses each picture as it is submitted.
FULL = QueueFull("full")
# A backend that can't be reached: as the Ray backend does, the queue takes each picture and its
# result is Busy.
UNREACHABLE = Busy("The picture service is unreachable right now.")


async def test_a_group_photo_that_meets_a_full_queue_is_tried_again_quietly(telegram, executor, tmp_path):
    describer = Wrapped(executor, refuse=refused_first(3, FULL))
    timings = dataclasses.replace(FAST, busy_retry_delays_s=(0.1,))
    async with running_bot(telegram, tmp_path / "state", describer, timings=timings):
        update = await telegram.push(
            telegram.message(-100500, user_id=12, photo=telegram.photo(pictures.jpeg("red")))
        )
        [reply] = await telegram.wait_for("sendMessage", chat_id=-100500)
        await until_handled(tmp_path / "state", update)
    assert "A red square." in reply["text"]  # no "busy" noise in the group: just the answer
    assert describer.tries == 4
    assert telegram.count("getFile") == 1  # the refusals cost no download


async def test_a_group_photo_that_never_finds_room_is_given_up_after_its_time(telegram, executor, tmp_path):
    describer = Wrapped(executor, refuse=refused_first(10**6, FULL))
    timings = dataclasses.replace(FAST, busy_retry_delays_s=(0.05,), busy_give_up_s=1.5)
    async with running_bot(telegram, tmp_path / "state", describer, timings=timings):
        update = await telegram.push(
            telegram.message(-100500, user_id=12, photo=telegram.photo(pictures.jpeg("red")))
        )
        await until_handled(tmp_path / "state", update)
    assert telegram.count("sendMessage", -100500) == 0  # nothing said to the group
    assert 2 <= describer.tries < 50  # tried again a few times, then given up


async def test_a_group_photo_whose_backend_is_unreachable_is_answered_once_it_is_back(
    telegram, executor, tmp_path
):
    describer = Wrapped(executor, refuse=refused_first(2, UNREACHABLE, at_once=False))
    timings = dataclasses.replace(FAST, busy_retry_delays_s=(0.1,))
    async with running_bot(telegram, tmp_path / "state", describer, timings=timings):
        update = await telegram.push(
            telegram.message(-100500, user_id=12, photo=telegram.photo(pictures.jpeg("red")))
        )
        await until_handled(tmp_path / "state", update)
        replies = telegram.sent("sendMessage", -100500)
    assert describer.tries == 3  # not marked done while the backend was away
    [reply] = replies
    assert "A red square." in reply["text"]  # no "busy" noise in the group: just the answer


class StuckEngine:
    """The tiny engine on a device that has stopped keeping up: every batch waits for
    ``gate`` (a test opens it) before the models run; counts the batches it was given."""

    def __init__(self, inner) -> None:
        self.inner, self.gate, self.batches = inner, threading.Event(), 0

    def __getattr__(self, name):  # prepare, input_size, languages, ...
        return getattr(self.inner, name)

    def run(self, kind, prepared, tasks):
        self.batches += 1
        self.gate.wait(60)  # never a model thread left waiting on a test that is over
        return self.inner.run(kind, prepared, tasks)


@pytest.fixture
async def stuck(engine):
    """The real executor, REQUEST_TIMEOUT_S=1, over a StuckEngine: (executor, engine)."""
    stuck = StuckEngine(engine)
    settings = EngineSettings.from_env({}).with_overrides(request_timeout_s=1.0)
    executor = Executor(settings, engine_factory=lambda: stuck, warmup=False)
    await executor.start()
    yield executor, stuck
    stuck.gate.set()
    await executor.stop()


def timeouts(executor: Executor) -> float:
    return executor.metrics.registry.get_sample_value("captioning_errors_total", {"reason": "timeout"}) or 0


async def test_a_private_photo_the_models_take_too_long_on_is_told_so(telegram, stuck, tmp_path):
    executor, engine = stuck
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.jpeg("red")))
        update = await telegram.push(photo)
        [reply] = await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(tmp_path / "state", update)
    assert reply["text"].startswith("Describing this picture took too long")
    assert reply["reply_parameters"]["message_id"] == photo["message_id"]
    assert engine.batches == 1 and timeouts(executor) == 1  # it reached the models, and ran out of time


async def test_a_group_photo_the_models_take_too_long_on_is_described_on_a_later_try(
    telegram, stuck, tmp_path
):
    executor, engine = stuck
    timings = dataclasses.replace(FAST, busy_retry_delays_s=(0.1,))
    async with running_bot(telegram, tmp_path / "state", executor, timings=timings) as runner:
        update = await telegram.push(
            telegram.message(-100500, user_id=12, photo=telegram.photo(pictures.jpeg("red")))
        )
        await until(
            lambda: update in runner.svc.journal.retrying, "the timed-out photo set to be tried again"
        )
        assert timeouts(executor) >= 1
        assert telegram.count("sendMessage", -100500) == 0  # no "took too long" noise in the group
        engine.gate.set()  # the device keeps up again
        [reply] = await telegram.wait_for("sendMessage", chat_id=-100500)
        await until_handled(tmp_path / "state", update)
    assert "A red square." in reply["text"]
    assert telegram.count("sendMessage", -100500) == 1  # just the answer


async def test_a_group_photo_tried_again_after_a_timeout_keeps_its_one_queued_reply(
    telegram, executor, tmp_path
):
    timed_out = []

    async def slow_then_timed_out(task, result):
        await asyncio.sleep(0.5)  # past status_after_s: a "queued" reply goes out
        if not timed_out:
            timed_out.append(task)
            raise RequestTimeout("slow")
        return result

    timings = dataclasses.replace(FAST, status_after_s=0.2, busy_retry_delays_s=(0.1,))
    describer = Wrapped(executor, on_result=slow_then_timed_out)
    async with running_bot(telegram, tmp_path / "state", describer, timings=timings):
        photo = telegram.message(-100500, user_id=12, photo=telegram.photo(pictures.jpeg("red")))
        update = await telegram.push(photo)
        await until_handled(tmp_path / "state", update)
    [status] = telegram.sent("sendMessage", -100500)
    [edit] = telegram.sent("editMessageText", -100500)
    assert status["text"].startswith("Queued:") and "A red square." in edit["text"]
    assert timed_out  # it was tried again (from the models, or from what they kept)


async def test_a_read_that_finishes_after_its_waiter_gave_up_is_kept_for_the_next_ask(
    telegram, stuck, tmp_path
):
    executor, engine = stuck
    async with running_bot(telegram, tmp_path / "state", executor):
        photo = telegram.message(5, photo=telegram.photo(pictures.encode(sign("STOP"), "PNG")))
        asked = telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
        first = await telegram.push(asked)
        [too_long] = await telegram.wait_for("sendMessage", chat_id=5)
        await until_handled(tmp_path / "state", first)
        engine.gate.set()  # the device catches up: the read finishes, after all
        await until(
            lambda: executor.metrics.registry.get_sample_value("captioning_request_seconds_count") == 1,
            "done",
        )
        again = telegram.message(5, text="/read", entities=command("/read"), reply_to_message=photo)
        await telegram.push(again)
        replies = await telegram.wait_for("sendMessage", count=2, chat_id=5)
    assert too_long["text"] == "Reading the text took too long; please ask again later."
    assert replies[1]["text"] == "Text in the picture:\nSTOP"
    assert engine.batches == 1  # the second ask was answered with the first one's work
