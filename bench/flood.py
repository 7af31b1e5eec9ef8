"""A flood of large files against one bot with default settings: its memory, and who is answered.

    python -m bench.flood                        # this tree's bot
    python -m bench.flood --bot-tree /tmp/old    # another checkout's bot, for a before/after
    python -m bench.flood --record               # append the table to docs/benchmarks.md

120 pictures of about 8 MB each, sent as files from 40 chats at once (three each), to a real
``python -m bot`` process on the Bot API stand-in (in a process of its own). The bot runs
small random-weight models saved to a folder, with every setting at its default. What is
measured: the bot process's peak memory growth over its resident size when ready (sampled
every 20 ms), and how many files got an answer (a description, or "send it again").
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
from PIL import Image

from bench.common import ROOT, header, random_engine, record
from tests.support.fake_telegram import FakeTelegram

CHATS, PER_CHAT = 40, 3
TARGET_MB = 8


def big_jpeg(seed: int) -> bytes:
    """A camera-like JPEG of about 8 MB (noise compresses badly), different for every seed."""
    image = Image.effect_noise((3100, 2400), 60 + seed % 20).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=97)
    data = buffer.getvalue()
    return data + bytes(8) * (seed + 1)  # bytes after the end: distinct files, as decodable


async def run(bot_tree: Path, folder: Path) -> dict[str, float]:
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.fake_telegram", stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    bot = None
    try:
        port = int((await server.stdout.readline()).decode())
        base = f"http://127.0.0.1:{port}"
        telegram = FakeTelegram()  # builds messages; the server in the other process keeps state
        telegram.port = port
        engine = random_engine("tiny", folder=folder / "models", tokens=8)
        del engine
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "CAPTION_", "TRANSLATION_"))
        }
        env.update(
            TELEGRAM_BOT_TOKEN=telegram.token,
            TELEGRAM_API_URL=telegram.api_url,
            TELEGRAM_FILE_URL=telegram.file_url,
            STATE_DIR=str(folder / "state"),
            CAPTION_MODEL=str(folder / "models" / "caption"),
            TRANSLATION_MODEL=str(folder / "models" / "translation"),
            QUESTION_TRANSLATION_MODEL=str(folder / "models" / "translation"),
            DEVICE="cpu",
            PYTHONPATH=str(bot_tree),
        )
        async with aiohttp.ClientSession() as session:
            files = []
            for seed in range(CHATS * PER_CHAT):
                data = big_jpeg(seed)
                async with session.post(f"{base}/_control/file", data=data) as response:
                    files.append(((await response.json())["file_id"], len(data)))
            bot = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                env=env,
                cwd=bot_tree,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            await ready(session, base)
            process = psutil.Process(bot.pid)
            baseline = process.memory_info().rss
            peak = baseline
            messages = []
            for n, (file_id, size) in enumerate(files):
                chat = 1000 + n % CHATS
                document = {
                    "file_id": file_id,
                    "file_unique_id": f"u-{file_id}",
                    "file_name": "big.jpg",
                    "mime_type": "image/jpeg",
                    "file_size": size,
                }
                messages.append(telegram.message(chat, document=document))
            started = time.monotonic()
            for message in messages:
                async with session.post(f"{base}/_control/push", json=message) as response:
                    await response.read()
            wanted = {m["message_id"] for m in messages}
            answered: set[int] = set()
            while answered != wanted and time.monotonic() - started < 900:
                peak = max(peak, process.memory_info().rss)
                async with session.get(
                    f"{base}/_control/calls", params={"method": "sendMessage"}
                ) as response:
                    calls = await response.json()
                answered = {
                    c["params"]["reply_parameters"]["message_id"]
                    for c in calls
                    if "reply_parameters" in c["params"]
                }
                await asyncio.sleep(0.02)
            elapsed = time.monotonic() - started
            texts = [c["params"]["text"] for c in calls]
            return {
                "files": len(wanted),
                "answered": len(answered & wanted),
                "described": sum("description" in t.lower() for t in texts),
                "asked_again": sum("again" in t for t in texts),
                "baseline_mb": baseline / 1e6,
                "growth_mb": (peak - baseline) / 1e6,
                "seconds": elapsed,
            }
    finally:
        for process in (bot, server):
            if process is not None and process.returncode is None:
                process.terminate()
                await process.wait()


async def ready(session: aiohttp.ClientSession, base: str) -> None:
    """Until the bot polls for updates: its models are loaded."""
    for _ in range(3000):
        async with session.get(f"{base}/_control/calls", params={"method": "getUpdates"}) as response:
            if await response.json():
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the bot never started polling")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bot-tree", type=Path, default=ROOT, help="the checkout whose bot is measured")
    parser.add_argument("--label", default="this tree", help="the row's name in the table")
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        result = await run(args.bot_tree.resolve(), Path(folder))
    row = (
        f"| {args.label} | {result['answered']} / {result['files']} | {result['described']} | "
        f"{result['asked_again']} | {result['growth_mb']:,.0f} MB | {result['seconds']:.0f} s |"
    )
    print(row)
    if args.record:
        record(
            [
                "### Flood: 120 files of about 8 MB from 40 chats at once",
                "",
                *header(f"python -m bench.flood --label '{args.label}'"),
                "- bot: `python -m bot` with default settings and tiny random-weight models; "
                "the Bot API stand-in in a process of its own",
                "",
                "| bot | answered | described | told to send again | peak memory growth | time |",
                "|---|---:|---:|---:|---:|---:|",
                row,
                "",
            ]
        )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
