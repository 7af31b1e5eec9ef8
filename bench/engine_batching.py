"""The notebook's way (one picture at a time) against the engine's batched way, in one run.

    python bench/engine_batching.py                 # CPU: a random-weight model of a few M params
    python bench/engine_batching.py --mode gpu      # GPU: full-size BLIP-2 OPT-2.7b + opus-mt, fp16

Both ways run the same engine, settings and pictures; every caption and translation is held
to exactly --tokens tokens, so they do the same work however they are batched. Throughput is
reported as a ratio measured in the same run: these machines are too noisy for absolute times.
``--record`` appends the table to docs/benchmarks.md with the date, machine and command.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from captioning import Engine, EngineSettings, synthetic
from captioning.models import Models

CORPUS_EN = ["a photo of a cat on a sofa", "a man riding a bicycle", "a plate of food on a table"]
CORPUS_ES = ["una foto de un gato en un sofá", "un hombre en bicicleta", "un plato de comida en una mesa"]


def build_engine(mode: str, tokens: int, folder: Path) -> Engine:
    shape = synthetic.SHAPES["full" if mode == "gpu" else "bench"]
    settings = EngineSettings.from_env({}).with_overrides(
        device="cuda" if mode == "gpu" else "cpu",
        dtype="float16" if mode == "gpu" else "float32",
        caption_max_new_tokens=tokens,
        translation_max_new_tokens=tokens,
        max_batch_size=1024,
    )
    processor, captioner = synthetic.build_captioner(
        shape, synthetic.caption_tokenizer(CORPUS_EN * 4), fixed_length=tokens
    )
    tokenizer = synthetic.translation_tokenizer(CORPUS_EN, CORPUS_ES)
    translator = synthetic.build_translator(shape, tokenizer, fixed_length=tokens)
    if mode == "gpu":
        # 3.9 B parameters: no point writing them to disk and reading them back.
        device = torch.device("cuda:0")
        models = Models(
            processor,
            captioner.to(device, torch.float16),
            tokenizer,
            translator.to(device, torch.float16),
            device,
            torch.float16,
        )
        return Engine(models, settings)
    caption_dir, translation_dir = synthetic.save_models(folder, processor, captioner, tokenizer, translator)
    # CPU: load through the engine's real from_pretrained path, as a user's model would be.
    return Engine.load(
        settings.with_overrides(caption_model=str(caption_dir), translation_model=str(translation_dir))
    )


def photos(count: int) -> list[bytes]:
    """Camera-like JPEGs (noise, 640 x 480): decoding and resizing cost what they do in life."""
    result = []
    for i in range(count):
        image = Image.effect_noise((640, 480), 40 + i % 20).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        result.append(buffer.getvalue())
    return result


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def one_at_a_time(engine: Engine, pictures: list[bytes]) -> None:
    for picture in pictures:  # the notebook: caption one picture, translate it, next
        engine.describe([picture])
    synchronize()


def batched(engine: Engine, pictures: list[bytes]) -> None:
    engine.describe(pictures)
    synchronize()


def timed(fn, engine: Engine, pictures: list[bytes], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(engine, pictures)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    text = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), torch {torch.__version__}"
    )
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--sizes", default="1,4,16,32", help="batch sizes, comma-separated")
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
        blip = synthetic.count_parameters(engine.models.captioner)
        marian = synthetic.count_parameters(engine.models.translator)
        warmup = photos(4)
        one_at_a_time(engine, warmup[:1])
        batched(engine, warmup)

        rows = []
        for size in sizes:
            pictures = photos(size)
            slow = timed(one_at_a_time, engine, pictures, args.repeats)
            fast = timed(batched, engine, pictures, args.repeats)
            rows.append((size, size / slow, size / fast, slow / fast))
            print(
                f"{size:>3} pictures: {size / slow:.2f} -> {size / fast:.2f} pictures/s ({slow / fast:.2f}x)"
            )

    title = (
        "GPU, full-size BLIP-2 OPT-2.7b + opus-mt-en-es (random weights)"
        if args.mode == "gpu"
        else ("CPU, small random-weight BLIP-2 + opus-mt-width Marian")
    )
    table = [
        f"### Engine batching: {title}",
        "",
        f"- date: {dt.date.today().isoformat()}",
        f"- machine: {machine()}",
        f"- command: `python bench/engine_batching.py {' '.join(sys.argv[1:])}`".replace(" --record", ""),
        f"- models: BLIP-2 {blip / 1e6:,.1f} M + Marian {marian / 1e6:,.1f} M parameters, "
        f"{str(engine.models.dtype).removeprefix('torch.')}, "
        f"{args.tokens} tokens per caption and per translation, "
        f"translation beams {engine.settings.translation_num_beams}, median of {args.repeats}",
        "",
        "| pictures | one at a time (pictures/s) | batched (pictures/s) | speed-up |",
        "|---:|---:|---:|---:|",
        *[f"| {n} | {a:.2f} | {b:.2f} | {r:.2f}x |" for n, a, b, r in rows],
        "",
    ]
    print("\n".join(table))
    if args.record:
        docs = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        if not docs.exists():
            docs.write_text(
                "# Benchmarks\n\nNewest first within each section; ratios, not timings, are the result.\n\n"
            )
        with docs.open("a", encoding="utf-8") as out:
            out.write("\n".join(table) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
