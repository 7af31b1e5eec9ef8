"""Chat models at full size as CAPTION_MODEL: SmolVLM-256M and -500M against BLIP-2, in one run.

    python -m bench.chat_fullsize                        # the CPU: float32 and int8; about 20 GB of RAM
    python -m bench.chat_fullsize --record               # append the table to docs/benchmarks.md
    python -m bench.chat_fullsize --device cuda --sizes 1,4,16 --record    # a GPU: float16
    python -m bench.chat_fullsize --models tiny --no-blip2 --sizes 1      # a smoke run, seconds

The architectures of HuggingFaceTB/SmolVLM-256M-Instruct and -500M-Instruct (Idefics3:
SigLIP base-patch16-512, SmolLM2-135M or -360M, SmolVLM's processor: the longest side to
2048 pixels, cut into 512-pixel tiles and a global view, 64 tokens each) with random weights,
saved as safetensors and loaded by the engine's own code (captioning.models.chat), each model
and way in a process of its own (its own peak memory); BLIP-2 OPT-2.7b (int8 on the CPU) in
the same run, the same way. The short description is --short tokens (CAPTION_PROMPT), the
detailed one --detailed tokens (DETAILED_PROMPT), greedy, every one exactly that long (the
models are saved without an end-of-text token); English only: Marian adds the same to every
row (bench.cpu_fullsize). 640 x 480 JPEGs. Reported: seconds per picture at each batch size,
and each process's peak memory (loading and quantizing included; on a GPU, its allocations).
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

from bench.common import CORPUS_EN, ROOT, header, jpeg, publish

BLIP2 = "blip2-opt-2.7b"


def build(folder: Path, name: str) -> None:
    """One model, random and full size, saved as the hub's are, never ending early."""
    import torch

    torch.manual_seed(0)
    if name == BLIP2:
        from tests.support import synthetic

        processor, model = synthetic.build_captioner(
            synthetic.SHAPES["full"], synthetic.caption_tokenizer(CORPUS_EN * 4)
        )
    else:
        from tests.support.tiny_chat import PROMPTS, SHAPES, build_chat_model, chat_processor

        processor = chat_processor(SHAPES[name], [*PROMPTS.values(), *CORPUS_EN])
        model = build_chat_model(SHAPES[name], processor)
    model.generation_config.eos_token_id = None  # every description exactly as long as asked
    processor.save_pretrained(folder / name)
    model.save_pretrained(folder / name)
    if not (folder / "translation").exists():  # the engine needs one; English only is timed
        from bench.common import CORPUS_ES
        from tests.support import synthetic

        tokenizer = synthetic.translation_tokenizer(CORPUS_EN, CORPUS_ES)
        translator = synthetic.build_translator(synthetic.SHAPES["tiny"], tokenizer)
        tokenizer.save_pretrained(folder / "translation")
        translator.save_pretrained(folder / "translation")


def measure(folder: Path, name: str, way: str, device: str, sizes: list[int], tokens: dict) -> dict:
    """Load ``name`` ``way`` (none, int8, or float16 on a GPU) and time each description at
    each batch size; the fastest of two runs is kept (the first of each also warms up)."""
    import torch

    from captioning import Engine, EngineSettings

    settings = EngineSettings.from_env({}).with_overrides(
        caption_model=str(folder / name),
        translation_models=f"es={folder / 'translation'}",
        question_translation_models="",
        ocr_model="",
        device=device,
        dtype="float16" if device.startswith("cuda") else "float32",
        quantize="int8" if way == "int8" else "none",
        quantized_cache_dir="off",
        caption_max_new_tokens=tokens["short"],
        detailed_max_new_tokens=tokens["detailed"],
        detailed_num_beams=1,
    )
    started = time.perf_counter()
    engine = Engine.load(settings, questions=False, reading=False)
    loaded = time.perf_counter() - started
    photos = [engine.prepare(jpeg((640, 480), i)) for i in range(max(sizes))]
    seconds: dict[str, dict[int, float]] = {}
    for kind in ("short", "detailed"):
        seconds[kind] = {}
        for size in sizes:
            times = []
            for _ in range(2):
                started = time.perf_counter()
                engine.describe(photos[:size], detailed=kind == "detailed", languages=())
                _synchronize(torch)
                times.append(time.perf_counter() - started)
            seconds[kind][size] = min(times) / size
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: kilobytes
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated()
    return {"load_s": loaded, "per_picture_s": seconds, "peak_bytes": peak}


def _synchronize(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def runs(models: list[str], device: str, blip2: bool) -> list[tuple[str, str]]:
    """(model, way) in the order measured: every chat model each way, then BLIP-2."""
    ways = ["float16"] if device.startswith("cuda") else ["none", "int8"]
    plan = [(model, way) for model in models for way in ways]
    if blip2:
        plan.append((BLIP2, ways[-1]))  # int8 on the CPU, float16 on a GPU
    return plan


def table(results: dict, args: argparse.Namespace, sizes: list[int]) -> list[str]:
    gpu = args.device.startswith("cuda")
    names = {"none": "float32", "int8": "int8", "float16": "float16"}
    columns = [f"{kind}, batch {s}" for kind in ("short", "detailed") for s in sizes]
    rows = []
    for (model, way), result in results.items():
        cells = [
            f"{result['per_picture_s'][kind][str(s)]:.2f} s" for kind in ("short", "detailed") for s in sizes
        ]
        memory = f"{result['peak_bytes'] / 1e9:.1f} GB"
        rows.append(
            f"| {model} | {names[way]} | " + " | ".join(cells) + f" | {memory} | {result['load_s']:.0f} s |"
        )
    return [
        f"### Chat models as CAPTION_MODEL, full size on the {'GPU' if gpu else 'CPU'}",
        "",
        *header(),
        f"- models: the SmolVLM-256M/-500M-Instruct architectures and BLIP-2 OPT-2.7b, random weights, "
        f"saved as safetensors and loaded by the engine; short description {args.short} tokens, detailed "
        f"{args.detailed} tokens, greedy; English only (no translation); 640 x 480 JPEGs (SmolVLM: 12 tiles "
        "and a global view, 832 picture tokens); each model and way in a process of its own",
        "",
        "| model | way | " + " | ".join(f"{c}, per picture" for c in columns) + " | peak memory | loading |",
        "|---|---|" + "---:|" * (len(columns) + 2),
        *rows,
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", default="smolvlm-256m,smolvlm-500m", help="tests.support.tiny_chat SHAPES"
    )
    parser.add_argument("--no-blip2", dest="blip2", action="store_false", help="leave BLIP-2 out")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: float16 and no int8")
    parser.add_argument("--sizes", default="1,4", help="batch sizes, comma-separated")
    parser.add_argument("--short", type=int, default=20, help="tokens of the short description")
    parser.add_argument("--detailed", type=int, default=120, help="tokens of the detailed description")
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    parser.add_argument("--build", nargs=2, help=argparse.SUPPRESS)  # FOLDER MODEL, in a child process
    parser.add_argument("--measure", nargs=3, help=argparse.SUPPRESS)  # FOLDER MODEL WAY
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tokens = {"short": args.short, "detailed": args.detailed}
    if args.build:
        build(Path(args.build[0]), args.build[1])
        return 0
    if args.measure:
        folder, name, way = args.measure
        print(json.dumps(measure(Path(folder), name, way, args.device, sizes, tokens)))
        return 0

    me = [sys.executable, "-m", "bench.chat_fullsize", "--device", args.device, "--sizes", args.sizes]
    me += ["--short", str(args.short), "--detailed", str(args.detailed)]
    results = {}
    with tempfile.TemporaryDirectory(prefix="chat-fullsize-") as folder:
        for model, way in runs(args.models.split(","), args.device, args.blip2):
            if not (Path(folder) / model).exists():
                print(f"Building {model}...", flush=True)
                subprocess.run([*me, "--build", folder, model], check=True, cwd=ROOT)
            print(f"Measuring {model} ({way})...", flush=True)
            out = subprocess.run(
                [*me, "--measure", folder, model, way],
                check=True,
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            ).stdout
            results[(model, way)] = json.loads(out.strip().splitlines()[-1])
            print(results[(model, way)], flush=True)
    publish(table(results, args, sizes), keep=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
