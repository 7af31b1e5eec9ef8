"""The executor on a GPU: batch-1 caption latency, and throughput with many requests in flight.

    python -m bench.gpu_executor --record                        # H100/H200: full-size, float16
    python -m bench.gpu_executor --shape bench --device cpu      # a quick check on a CPU

Full-size BLIP-2 OPT-2.7b and opus-mt-en-es with random weights (nothing is downloaded),
every caption and translation exactly --tokens long. Reported, in one run:

* batch-1 latency of one caption, against the memory-bandwidth floor: each decode step
  reads every OPT weight once (about 5.3 GB in float16), so 20 tokens on an H100
  (3.35 TB/s) cannot take less than about 32 ms;
* pictures/s with --in-flight requests submitted at once through the executor, against the
  same pictures described one at a time.

Levers, each a flag: --static-cache (a static KV cache), --compile (torch.compile of the
language model's forward pass). SDPA attention is transformers' default where available.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import torch

from bench.common import header, jpeg, publish, random_engine
from captioning import Describe
from captioning.engine import Engine
from captioning.serving.executor import Executor

OPT_2_7B_BYTES = 2.65e9 * 2  # OPT-2.7b's weights in float16, read once per decode step
BANDWIDTH = {"H100": 3.35e12, "H200": 4.8e12}


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def caption_latency(engine: Engine, repeats: int) -> float:
    prepared = [engine.prepare(jpeg((640, 480), 0))]
    engine.english("describe", prepared, [Describe()])  # warm
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        engine.english("describe", prepared, [Describe()])
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def executor_throughput(engine: Engine, count: int, batch: int) -> tuple[float, float]:
    settings = engine.settings.with_overrides(
        max_batch_size=batch, max_batch_wait_ms=5, max_queue=count * 2, max_queued_per_user=count * 2
    )
    executor = Executor(settings, engine_factory=lambda: engine)
    await executor.start()
    pictures = [jpeg((640, 480), i) for i in range(count)]
    try:
        start = time.perf_counter()
        for picture in pictures:  # one at a time, as the notebook did
            await executor.submit(picture).result()
        serial = time.perf_counter() - start
        start = time.perf_counter()
        await asyncio.gather(*(executor.submit(p, lane=i).result() for i, p in enumerate(pictures)))
        together = time.perf_counter() - start
    finally:
        await executor.stop()
    return count / serial, count / together


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=["full", "bench", "tiny"], default="full")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--in-flight", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64, help="MAX_BATCH_SIZE for the executor")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--static-cache", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA GPU here; use --device cpu --shape bench for a quick check", file=sys.stderr)
        return 2
    dtype = "float16" if args.device.startswith("cuda") else "float32"
    engine = random_engine(args.shape, device=args.device, dtype=dtype, tokens=args.tokens)
    language_model = engine.routes["describe"].model.language_model
    if args.static_cache:
        engine.routes["describe"].generation["describe"].cache_implementation = "static"
    if args.compile:
        language_model.forward = torch.compile(language_model.forward, mode="reduce-overhead")

    latency = caption_latency(engine, args.repeats)
    serial, together = asyncio.run(executor_throughput(engine, args.in_flight, args.batch))
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    bandwidth = next((b for key, b in BANDWIDTH.items() if key in name), None)
    floor = args.tokens * OPT_2_7B_BYTES / bandwidth if bandwidth and args.shape == "full" else None
    levers = ", ".join(
        x for x, on in (("static cache", args.static_cache), ("torch.compile", args.compile)) if on
    )
    lines = [
        f"### Executor on {name}: {args.shape} models, {dtype}{f' ({levers})' if levers else ''}",
        "",
        *header(),
        "",
        "| measure | result |",
        "|---|---:|",
        f"| batch-1 latency, {args.tokens}-token caption | {latency * 1000:.1f} ms |",
        *([f"| bandwidth floor | {floor * 1000:.1f} ms ({latency / floor:.2f}x of it) |"] if floor else []),
        f"| one at a time | {serial:.2f} pictures/s |",
        f"| {args.in_flight} in flight, batches up to {args.batch} | {together:.2f} pictures/s |",
        f"| speed-up | {together / serial:.2f}x |",
        "",
    ]
    publish(lines, keep=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
