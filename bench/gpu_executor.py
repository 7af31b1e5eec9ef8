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

Levers, each a flag: --static-cache (a static KV cache, not compiled), --compile (a static
cache and transformers' own torch.compile of the forward pass, with CUDA graphs). SDPA
attention is transformers' default where available. Everything that runs the models runs on
the executor's model thread, the latency too: compiled CUDA graphs belong to the thread that
recorded them. The burst of pictures in flight runs twice and the second is reported, so that
compiling for a new batch size is not what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field

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


def prepare_rate(engine: Engine, count: int) -> float:
    """Pictures/s that one CPU thread decodes and prepares (the executor's decoders do this)."""
    pictures = [jpeg((640, 480), i) for i in range(count)]
    start = time.perf_counter()
    for picture in pictures:
        engine.prepare(picture)
    return count / (time.perf_counter() - start)


@dataclass
class Measured:
    latency: float = 0.0  # batch-1 caption, seconds, on the executor's model thread
    serial: float = 0.0  # pictures/s, one at a time
    together: float = 0.0  # pictures/s, all in flight
    passes: list[tuple[int, float]] = field(default_factory=list)  # (pictures, seconds) of each pass


async def executor_throughput(engine: Engine, count: int, batch: int, repeats: int) -> Measured:
    """The latency, pictures/s one at a time and all in flight, and the passes the burst made."""
    measured = Measured()
    settings = engine.settings.with_overrides(
        max_batch_size=batch, max_batch_wait_ms=5, max_queue=count * 2, max_queued_per_user=count * 2
    )

    def on_model_thread() -> Engine:
        measured.latency = caption_latency(engine, repeats)
        return engine

    executor = Executor(settings, engine_factory=on_model_thread)
    await executor.start()
    observe = executor.metrics.observe_batch

    def record(size: int, seconds: float) -> None:
        measured.passes.append((size, seconds))
        observe(size, seconds)

    executor.metrics.observe_batch = record  # type: ignore[method-assign]
    pictures = [jpeg((640, 480), i) for i in range(count)]
    try:
        start = time.perf_counter()
        for picture in pictures:  # one at a time, as the notebook did
            await executor.submit(picture).result()
        measured.serial = count / (time.perf_counter() - start)
        for _ in range(2):  # the first burst may compile for new batch sizes
            measured.passes.clear()
            start = time.perf_counter()
            await asyncio.gather(*(executor.submit(p, lane=i).result() for i, p in enumerate(pictures)))
            measured.together = count / (time.perf_counter() - start)
    finally:
        await executor.stop()
    return measured


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
    generation = engine.routes["describe"].generation["describe"]
    if args.static_cache or args.compile:
        generation.cache_implementation = "static"
        generation.disable_compile = not args.compile  # transformers compiles a static cache's pass

    preparing = prepare_rate(engine, args.in_flight)
    measured = asyncio.run(executor_throughput(engine, args.in_flight, args.batch, args.repeats))
    latency, serial, together = measured.latency, measured.serial, measured.together
    shown = ", ".join(f"{size} in {seconds * 1000:.0f} ms" for size, seconds in measured.passes)
    name = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    bandwidth = next((b for key, b in BANDWIDTH.items() if key in name), None)
    floor = args.tokens * OPT_2_7B_BYTES / bandwidth if bandwidth and args.shape == "full" else None
    used = (("static cache", args.static_cache or args.compile), ("torch.compile", args.compile))
    levers = ", ".join(lever for lever, on in used if on)
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
        f"| decoding and preparing, one CPU thread | {preparing:.1f} pictures/s |",
        "",
        f"Forward passes with {args.in_flight} in flight (pictures, time): {shown}.",
        "",
    ]
    publish(lines, keep=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
