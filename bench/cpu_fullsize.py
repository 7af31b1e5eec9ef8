"""Full-size models on the CPU, float32 against int8 (QUANTIZE=int8), in one run.

    python -m bench.cpu_fullsize                 # batch 1 and 4; needs about 16 GB of RAM and 17 GB of disk
    python -m bench.cpu_fullsize --record        # append the table to docs/benchmarks.md

BLIP-2 OPT-2.7b and opus-mt-en-es at their real sizes, with random weights, saved to a folder
as safetensors and loaded by the engine's own code, each way in a process of its own (so each
has its own peak memory): float32 as the engine loads it today, and int8 as QUANTIZE=int8 loads
it (one Linear layer at a time), twice: the first start quantizes and saves the int8 models
(QUANTIZED_CACHE_DIR, here a temporary folder), a later start loads them from there. Every
caption and translation is exactly --tokens tokens, on 640 x 480 JPEGs. Reported: seconds per
picture at each batch size, the process's peak resident memory (loading and quantizing
included), and how long loading took.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import CORPUS_EN, CORPUS_ES, ROOT, header, jpeg, publish


def build(folder: Path, tokens: int) -> None:
    """The random full-size models, saved as the hub's are (safetensors)."""
    import torch

    from tests.support import synthetic

    torch.manual_seed(0)
    shape = synthetic.SHAPES["full"]
    processor, captioner = synthetic.build_captioner(
        shape, synthetic.caption_tokenizer(CORPUS_EN * 4), fixed_length=tokens
    )
    tokenizer = synthetic.translation_tokenizer(CORPUS_EN, CORPUS_ES)
    translator = synthetic.build_translator(shape, tokenizer, fixed_length=tokens)
    synthetic.save_models(folder, processor, captioner, tokenizer, translator)


def measure(folder: Path, way: str, sizes: list[int], tokens: int, repeats: int) -> dict:
    """Load the engine ``way`` (none or int8; the int8 models are kept in ``folder/int8``), and
    time describing batches of each size."""
    from captioning import Engine, EngineSettings

    settings = EngineSettings.from_env({}).with_overrides(
        caption_model=str(folder / "caption"),
        translation_models=f"es={folder / 'translation'}",
        question_translation_models="",
        ocr_model="",
        device="cpu",
        quantize=way,
        quantized_cache_dir=str(folder / "int8"),
        caption_max_new_tokens=tokens,
        translation_max_new_tokens=tokens,
    )
    started = time.perf_counter()
    engine = Engine.load(settings, questions=False, reading=False)
    loaded = time.perf_counter() - started
    photos = [engine.prepare(jpeg((640, 480), i)) for i in range(max(sizes))]
    engine.describe(photos[:1])  # warm-up
    seconds = {}
    for size in sizes:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            engine.describe(photos[:size])
            times.append(time.perf_counter() - started)
        seconds[size] = min(times) / size
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    return {"way": way, "load_s": loaded, "per_picture_s": seconds, "peak_bytes": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4", help="batch sizes, comma-separated")
    parser.add_argument("--tokens", type=int, default=20, help="tokens per caption and translation")
    parser.add_argument("--repeats", type=int, default=1, help="runs per batch size; the fastest is kept")
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)  # run in a child process
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--way", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.build:
        build(args.build, args.tokens)
        return 0
    if args.measure:
        print(json.dumps(measure(args.measure, args.way, sizes, args.tokens, args.repeats)))
        return 0

    results = {}
    with tempfile.TemporaryDirectory(prefix="fullsize-") as folder:
        me = [sys.executable, "-m", "bench.cpu_fullsize", "--sizes", args.sizes, "--tokens", str(args.tokens)]
        print("Building the full-size random models (once; about 16 GB)...", flush=True)
        subprocess.run([*me, "--build", folder], check=True, cwd=ROOT)
        for run, way in (("none", "none"), ("int8", "int8"), ("int8 cached", "int8")):
            print(f"Measuring {run}...", flush=True)
            out = subprocess.run(
                [*me, "--measure", folder, "--way", way, "--repeats", str(args.repeats)],
                check=True,
                cwd=ROOT,
                capture_output=True,
                text=True,
            ).stdout
            results[run] = json.loads(out.strip().splitlines()[-1])
            print(results[run], flush=True)
    plain, small, cached = results["none"], results["int8"], results["int8 cached"]
    rows = [
        "| float32 (QUANTIZE=none) | "
        + " | ".join(f"{plain['per_picture_s'][str(s)]:.1f} s" for s in sizes)
        + f" | {plain['peak_bytes'] / 1e9:.1f} GB | {plain['load_s']:.0f} s |",
        "| int8 (QUANTIZE=int8), first start | "
        + " | ".join(f"{small['per_picture_s'][str(s)]:.1f} s" for s in sizes)
        + f" | {small['peak_bytes'] / 1e9:.1f} GB | {small['load_s']:.0f} s |",
        "| int8, later starts (from QUANTIZED_CACHE_DIR) | "
        + " | ".join(f"{cached['per_picture_s'][str(s)]:.1f} s" for s in sizes)
        + f" | {cached['peak_bytes'] / 1e9:.1f} GB | {cached['load_s']:.0f} s |",
    ]
    speedups = ", ".join(
        f"{plain['per_picture_s'][str(s)] / small['per_picture_s'][str(s)]:.2f}x at batch {s}" for s in sizes
    )
    table = [
        "### Full size on the CPU: float32 against int8",
        "",
        *header(),
        f"- models: BLIP-2 OPT-2.7b and opus-mt-en-es at full size, random weights, saved as safetensors and "
        f"loaded by the engine; {args.tokens} tokens per caption and per translation (4 beams), 640 x 480 "
        "JPEGs; each way in a process of its own",
        "",
        "| way | " + " | ".join(f"batch {s}, per picture" for s in sizes) + " | peak memory | loading |",
        "|---|" + "---:|" * (len(sizes) + 2),
        *rows,
        "",
        f"int8 is {speedups}, in {small['peak_bytes'] / plain['peak_bytes']:.0%} of float32's peak memory "
        "(quantizing included); the first start adds "
        f"{small['load_s'] - plain['load_s']:.0f} s to loading (quantizing, and saving the int8 models), "
        f"a later start loads them in {cached['load_s']:.0f} s.",
        "",
    ]
    publish(table, keep=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
