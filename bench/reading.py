"""Reading text one picture at a time against a batch in one ``generate``, in one run.

    python -m bench.reading                  # CPU: a random-weight Florence-2 of a few M weights
    python -m bench.reading --mode gpu       # GPU: Florence-2-large's architecture, float16
    python -m bench.reading --record         # append the table to docs/benchmarks.md

Both ways run the same reader on the same 640 x 480 pictures, at Florence-2's 768 px with its
577 image tokens; random weights are held to exactly --tokens tokens per text, so both do the
same work however they are batched. Throughput is a ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.common import header, jpeg, publish
from captioning import EngineSettings
from captioning.images import load_image
from captioning.models.florence import Florence
from captioning.models.loading import resolve_device
from tests.support.tiny_reader import build_random_model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--sizes", default="1,8,16", help="pictures per batch, comma-separated")
    parser.add_argument(
        "--tokens", type=int, default=64, help="tokens read per picture (a sign to a short menu)"
    )
    parser.add_argument(
        "--beams", type=int, default=1, help="beam width (OCR_NUM_BEAMS; the bot's default is 3)"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell; the median is kept")
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    args = parser.parse_args()
    if args.mode == "gpu" and not torch.cuda.is_available():
        print("error: --mode gpu needs a CUDA GPU", file=sys.stderr)
        return 2
    shape, device, dtype = ("large", "cuda", "float16") if args.mode == "gpu" else ("bench", "cpu", "float32")
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        build_random_model(Path(folder), shape, fixed_length=args.tokens)
        settings = EngineSettings.from_env({}).with_overrides(
            ocr_model=folder,
            device=device,
            dtype=dtype,
            ocr_max_new_tokens=args.tokens,
            ocr_num_beams=args.beams,
        )
        torch_device = resolve_device(device)
        reader = Florence.load(
            folder, folder, settings, torch_device, getattr(torch, dtype), role="reading", setting="OCR_MODEL"
        )
        weights = sum(p.numel() for p in reader.model.parameters())
        pictures = [
            reader.prepare(load_image(jpeg((640, 480), i), min_side=reader.input_size))
            for i in range(max(sizes))
        ]
        reader.read(pictures[:2])  # warm-up

        def timed(run) -> float:
            times = []
            for _ in range(args.repeats):
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                started = time.perf_counter()
                run()
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - started)
            return statistics.median(times)

        rows = []
        for size in sizes:
            batch = pictures[:size]
            slow = timed(lambda batch=batch: [reader.read([p]) for p in batch])
            fast = timed(lambda batch=batch: reader.read(batch))
            rows.append((size, size / slow, size / fast, slow / fast))
            print(
                f"{size:>3} pictures: {size / slow:.2f} -> {size / fast:.2f} pictures/s ({slow / fast:.2f}x)"
            )
    title = (
        "GPU, Florence-2-large architecture" if args.mode == "gpu" else "CPU, small random-weight Florence-2"
    )
    table = [
        f"### Reading text: {title}",
        "",
        *header(),
        f"- model: {weights / 1e6:,.1f} M weights, {dtype}, {reader.input_size} px "
        f"({(reader.input_size // 32) ** 2 + 1} image tokens), exactly {args.tokens} tokens read per "
        f"picture, {args.beams} beam(s), median of {args.repeats}",
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
