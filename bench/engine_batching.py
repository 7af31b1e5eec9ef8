"""The notebook's way (one picture at a time) against the engine's batched way, in one run.

    python -m bench.engine_batching                 # CPU: a random-weight model of a few M params
    python -m bench.engine_batching --mode gpu      # GPU: full-size BLIP-2 OPT-2.7b + opus-mt, fp16
    python -m bench.engine_batching --task answer   # questions about the pictures instead

Both ways run the same engine, settings and pictures; every caption and translation is held
to exactly --tokens tokens, so they do the same work however they are batched. Throughput is
reported as a ratio measured in the same run: these machines are too noisy for absolute times.
``--record`` appends the table to docs/benchmarks.md with the date, machine and command.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.common import header, jpeg, publish, random_engine
from captioning import Engine
from tests.support import synthetic


def build_engine(mode: str, tokens: int, folder: Path) -> Engine:
    if mode == "gpu":
        return random_engine("full", device="cuda", dtype="float16", tokens=tokens)
    # CPU: saved and loaded back through the engine's real from_pretrained path.
    return random_engine("bench", tokens=tokens, folder=folder)


def photos(count: int) -> list[bytes]:
    return [jpeg((640, 480), i) for i in range(count)]


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


# Questions of different lengths, so that batched prompts are padded as they are in life.
QUESTIONS = [
    "what is in the photo?",
    "how many people are there?",
    "what color is the car on the left?",
    "is it raining?",
]


def run(engine: Engine, pictures: list[bytes], task: str) -> None:
    if task == "answer":
        asked = [QUESTIONS[i % len(QUESTIONS)] for i in range(len(pictures))]
        engine.answer(pictures, asked)
    else:
        engine.describe(pictures)


def one_at_a_time(engine: Engine, pictures: list[bytes], task: str = "describe") -> None:
    for picture in pictures:  # the notebook: caption one picture, translate it, next
        run(engine, [picture], task)
    synchronize()


def batched(engine: Engine, pictures: list[bytes], task: str = "describe") -> None:
    run(engine, pictures, task)
    synchronize()


def timed(fn, engine: Engine, pictures: list[bytes], repeats: int, task: str) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(engine, pictures, task)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--sizes", default="1,4,16,32", help="batch sizes, comma-separated")
    parser.add_argument(
        "--task", choices=["describe", "answer"], default="describe", help="captions, or answers to questions"
    )
    parser.add_argument("--tokens", type=int, default=20, help="tokens per caption and translation")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is kept")
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    args = parser.parse_args()
    if args.mode == "gpu" and not torch.cuda.is_available():
        print("error: --mode gpu needs a CUDA GPU", file=sys.stderr)
        return 2
    sizes = [int(s) for s in args.sizes.split(",")]

    with tempfile.TemporaryDirectory() as folder:
        engine = build_engine(args.mode, args.tokens, Path(folder))
        blip = synthetic.count_parameters(engine.routes["describe"].model)
        marian = synthetic.count_parameters(engine.translations.translators["es"].model)
        warmup = photos(4)
        one_at_a_time(engine, warmup[:1], args.task)
        batched(engine, warmup, args.task)

        rows = []
        for size in sizes:
            pictures = photos(size)
            slow = timed(one_at_a_time, engine, pictures, args.repeats, args.task)
            fast = timed(batched, engine, pictures, args.repeats, args.task)
            rows.append((size, size / slow, size / fast, slow / fast))
            print(
                f"{size:>3} pictures: {size / slow:.2f} -> {size / fast:.2f} pictures/s ({slow / fast:.2f}x)"
            )

    title = (
        "GPU, full-size BLIP-2 OPT-2.7b + opus-mt-en-es (random weights)"
        if args.mode == "gpu"
        else ("CPU, small random-weight BLIP-2 + opus-mt-width Marian")
    )
    if args.task == "answer":
        title += ", answering questions of different lengths"
    table = [
        f"### Engine batching: {title}",
        "",
        *header(),
        f"- models: BLIP-2 {blip / 1e6:,.1f} M + Marian {marian / 1e6:,.1f} M parameters, "
        f"{str(engine.dtype).removeprefix('torch.')}, "
        f"{args.tokens} tokens per {'answer' if args.task == 'answer' else 'caption'} and per translation, "
        f"translation beams {engine.settings.translation_num_beams}, median of {args.repeats}",
        "",
        "| pictures | one at a time (pictures/s) | batched (pictures/s) | speed-up |",
        "|---:|---:|---:|---:|",
        *[f"| {n} | {a:.2f} | {b:.2f} | {r:.2f}x |" for n, a, b, r in rows],
        "",
    ]
    publish(table, keep=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
