"""The bot end to end, against the Bot API stand-in on 127.0.0.1, in one run.

    python -m bench.bot_throughput                      # both scenarios
    python -m bench.bot_throughput --scenario overhead  # or e2e

* ``e2e``: the real executor and a small random-weight model (the CPU benchmark's shape).
  24 photos from 8 chats sent together, against the same photos sent one at a time (each
  after the previous reply). Throughput ratio, p50 and p95 latency from send to reply.
* ``overhead``: an instant stand-in engine (it decodes, then answers at once), so what is
  measured is the bot's own cost per photo: the update, the download, decoding, the queue,
  the reply. Latency one photo at a time; throughput with many in flight. Telegram's own
  limit (about 30 messages/s) is left out: AIORateLimiter is off in this scenario.

``--record`` appends the tables to docs/benchmarks.md with the date, machine and command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, header, jpeg, publish, random_engine
from bench.common import percentile as pct
from captioning import Capabilities, EngineSettings, Translated, load_image
from captioning.serving.executor import Executor
from tests.support.bot_harness import running_bot
from tests.support.fake_telegram import FakeTelegram


class InstantEngine:
    """Decodes like the real engine (bytes -> RGB, JPEG draft to 224), then answers at once."""

    capabilities = Capabilities(
        ("en", "es"), sizes={"describe": 224, "describe_detailed": 224, "answer": 224}
    )

    def prepare(self, picture, task=None):
        return load_image(picture, min_side=224) if isinstance(picture, bytes) else picture

    def run(self, kind, pictures, tasks):
        return [Translated("a photo", {"es": "una foto"}) for _ in pictures]

    def problem(self) -> None:
        return None

    def warm_up(self) -> float:
        return 0.0


class Harness:
    """FakeTelegram + the bot's Application, polling it, in this event loop."""

    def __init__(self, executor: Executor, state: Path, rate_limit: bool) -> None:
        self.executor, self.state, self.rate_limit = executor, state, rate_limit

    async def __aenter__(self) -> Harness:
        self._stack = contextlib.AsyncExitStack()
        self.telegram = await self._start_telegram()
        bot = running_bot(self.telegram, self.state, self.executor, rate_limit=self.rate_limit)
        await self._stack.enter_async_context(bot)
        return self

    async def __aexit__(self, *exc) -> None:
        await self._stack.aclose()

    async def _start_telegram(self) -> FakeTelegram:
        telegram = await FakeTelegram().start()
        self._stack.push_async_callback(telegram.stop)
        return telegram

    def photo_message(self, chat: int, data: bytes, user: int) -> dict:
        return self.telegram.message(
            chat, user_id=user, photo=self.telegram.photo(data, [(90, 68), (320, 240)])
        )

    async def replies(self, count: int) -> None:
        await self.telegram.wait_for("sendMessage", count=count, timeout=600)

    def reply_times(self) -> dict[int, float]:
        return {
            c.params["reply_parameters"]["message_id"]: c.at
            for c in self.telegram.calls
            if c.method == "sendMessage" and "reply_parameters" in c.params
        }


class RemoteHarness(Harness):
    """The same, with the Bot API stand-in in a process of its own: the bot gets a core to
    itself, so what is measured is the bot's cost, not the stand-in's."""

    async def _start_telegram(self) -> FakeTelegram:
        import aiohttp

        self.server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.support.fake_telegram", stdout=asyncio.subprocess.PIPE, cwd=ROOT
        )
        self._stack.push_async_callback(self._stop_server)
        port = int((await self.server.stdout.readline()).decode())
        self.base = f"http://127.0.0.1:{port}"
        self.session = aiohttp.ClientSession()
        self._stack.push_async_callback(self.session.close)
        self.photo_ids: dict[bytes, str] = {}
        telegram = FakeTelegram()  # builds messages; the server in the other process keeps state
        telegram.port = port
        return telegram

    async def _stop_server(self) -> None:
        self.server.terminate()
        await self.server.wait()

    async def file_id(self, data: bytes) -> str:
        if data not in self.photo_ids:
            async with self.session.post(f"{self.base}/_control/file", data=data) as response:
                self.photo_ids[data] = (await response.json())["file_id"]
        return self.photo_ids[data]

    async def push_photo(self, chat: int, data: bytes, user: int) -> dict:
        file_id = await self.file_id(data)
        photo = [
            {
                "file_id": file_id,
                "file_unique_id": f"u-{time.time_ns()}",
                "width": 320,
                "height": 240,
                "file_size": len(data),
            }
        ]
        message = self.telegram.message(chat, user_id=user, photo=photo)
        async with self.session.post(f"{self.base}/_control/push", json=message) as response:
            await response.read()
        return message

    async def reply_times_remote(self) -> dict[int, float]:
        async with self.session.get(
            f"{self.base}/_control/calls", params={"method": "sendMessage"}
        ) as response:
            calls = await response.json()
        return {c["params"]["reply_parameters"]["message_id"]: c["at"] for c in calls}

    async def wait_replies(self, count: int) -> dict[int, float]:
        params = {"method": "sendMessage", "count": count}
        async with self.session.get(f"{self.base}/_control/wait", params=params) as response:
            await response.read()
        return await self.reply_times_remote()


async def remote_one_at_a_time(h: RemoteHarness, photos: list[tuple[int, bytes]]) -> list[float]:
    latencies = []
    for i, (chat, data) in enumerate(photos):
        await h.file_id(data)
        start = time.time()
        message = await h.push_photo(chat, data, user=chat)
        times = await h.wait_replies(i + 1)
        latencies.append(times[message["message_id"]] - start)
    return latencies


async def remote_together(h: RemoteHarness, photos: list[tuple[int, bytes]], already: int = 0) -> float:
    await h.file_id(photos[0][1])
    start = time.time()
    messages = [await h.push_photo(chat, data, user=1_000_000 + i) for i, (chat, data) in enumerate(photos)]
    times = await h.wait_replies(already + len(messages))
    return max(times[m["message_id"]] for m in messages) - start


async def one_at_a_time(h: Harness, photos: list[tuple[int, bytes]]) -> list[float]:
    latencies = []
    for i, (chat, data) in enumerate(photos):
        message = h.photo_message(chat, data, user=chat)
        start = time.time()  # the stand-in stamps calls with the wall clock
        await h.telegram.push(message)
        await h.replies(i + 1)
        latencies.append(h.reply_times()[message["message_id"]] - start)
    return latencies


async def together(
    h: Harness, photos: list[tuple[int, bytes]], already: int = 0
) -> tuple[list[float], float]:
    messages = [h.photo_message(chat, data, user=1_000_000 + i) for i, (chat, data) in enumerate(photos)]
    start = time.time()
    for message in messages:
        await h.telegram.push(message)
    await h.replies(already + len(messages))
    times = h.reply_times()
    latencies = [times[m["message_id"]] - start for m in messages]
    return latencies, max(latencies)


async def e2e(folder: Path) -> list[str]:
    settings = EngineSettings.from_env({}).with_overrides(max_batch_size=16, max_batch_wait_ms=10)
    engine = random_engine("bench")
    executor = Executor(settings, engine_factory=lambda: engine)
    await executor.start()
    photos = [(1 + i % 8, jpeg((640, 480), i)) for i in range(24)]
    try:
        async with Harness(executor, folder / "a", rate_limit=True) as h:
            serial = await one_at_a_time(h, photos)
        async with Harness(executor, folder / "b", rate_limit=True) as h:
            burst, burst_total = await together(h, photos)
    finally:
        await executor.stop()
    serial_total = sum(serial)
    ratio = serial_total / burst_total
    print(
        f"e2e: one at a time {24 / serial_total:.2f} photos/s, "
        f"together {24 / burst_total:.2f} photos/s ({ratio:.2f}x)"
    )
    return [
        "### Bot end to end: 24 photos from 8 chats",
        "",
        *header("python -m bench.bot_throughput --scenario e2e"),
        "- engine: the executor with the CPU benchmark's random-weight models (BLIP-2 4.8 M + Marian "
        "44.7 M, 20 tokens per caption and translation), MAX_BATCH_SIZE 16, MAX_BATCH_WAIT_MS 10; "
        "AIORateLimiter on; 640 x 480 JPEGs",
        "",
        "| way | photos/s | p50 latency (s) | p95 latency (s) |",
        "|---|---:|---:|---:|",
        f"| one at a time | {24 / serial_total:.2f} | {pct(serial, 0.5):.3f} | {pct(serial, 0.95):.3f} |",
        f"| together | {24 / burst_total:.2f} | {pct(burst, 0.5):.3f} | {pct(burst, 0.95):.3f} |",
        "",
        f"Throughput together / one at a time: **{ratio:.2f}x** (goal: at least 3x).",
        "",
    ]


async def overhead(folder: Path, count: int) -> list[str]:
    settings = EngineSettings.from_env({}).with_overrides(
        max_batch_size=64, max_batch_wait_ms=1, max_queue=100_000, max_queued_per_user=100_000
    )
    executor = Executor(settings, engine_factory=InstantEngine, warmup=False, decode_threads=2)
    await executor.start()
    data = jpeg((320, 240), 0)
    try:
        async with RemoteHarness(executor, folder / "c", rate_limit=False) as h:
            serial = await remote_one_at_a_time(h, [(1 + i % 50, data) for i in range(200)])
        async with RemoteHarness(executor, folder / "d", rate_limit=False) as h:
            await remote_together(h, [(1 + i % 100, data) for i in range(100)])  # warm the connections
            total = await remote_together(h, [(1 + i % 100, data) for i in range(count)], already=100)
    finally:
        await executor.stop()
    rate = count / total
    print(
        f"overhead: p50 {pct(serial, 0.5) * 1000:.1f} ms one at a time, "
        f"{rate:.0f} photos/s with {count} in flight"
    )
    return [
        "### Bot overhead: an instant stand-in engine",
        "",
        *header("python -m bench.bot_throughput --scenario overhead"),
        "- what is timed: a photo update's way through the bot and back (getUpdates, getFile, the "
        "download, decoding a 320 x 240 JPEG, the executor's queue, sendChatAction and the "
        "reply), with the Bot API stand-in in a process of its own; AIORateLimiter off",
        "",
        "| measure | result | goal |",
        "|---|---:|---:|",
        f"| p50 latency, one photo at a time (200 photos) | {pct(serial, 0.5) * 1000:.1f} ms | ≤ 15 ms |",
        f"| p95 latency, one photo at a time | {pct(serial, 0.95) * 1000:.1f} ms | |",
        f"| throughput, {count} photos from 100 chats at once | {rate:.0f} photos/s | ≥ 200 photos/s |",
        "",
    ]


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=["e2e", "overhead", "both"], default="both")
    parser.add_argument(
        "--count", type=int, default=1000, help="photos in flight for the overhead throughput"
    )
    parser.add_argument("--record", action="store_true", help="append the tables to docs/benchmarks.md")
    args = parser.parse_args()
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        if args.scenario in ("e2e", "both"):
            lines += await e2e(Path(folder))
        if args.scenario in ("overhead", "both"):
            lines += await overhead(Path(folder), args.count)
    publish(lines, keep=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
