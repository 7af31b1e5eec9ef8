"""The two translation backends, in one run: transformers against CTranslate2, on a Marian of
opus-mt-en-es's size.

    python -m bench.translation                 # 1, 16 and 64 sentences, 4 beams
    python -m bench.translation --record        # append the table to docs/benchmarks.md

A random-weight Marian of Helsinki-NLP/opus-mt-en-es's shape (d_model 512, 6 + 6 layers,
vocabulary 65001, <pad> last, as opus-mt), saved to a folder and loaded by each backend as the
engine loads it (``MarianTranslator``, ``CTranslate2Translator``: the conversion is timed
apart). Random weights never choose to stop, so both are held to exactly --tokens new tokens
(through the saved generation config's ``min_new_tokens``): the same work either way.
Sentences of about 12 tokens. Throughput is compared as a ratio in the same run, the fastest
of --repeats interleaved runs each: these machines are too noisy for absolute times.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import MarianTokenizer

from bench.common import header, publish
from captioning import EngineSettings
from captioning.settings import ModelRef
from captioning.translation.ctranslate2 import CTranslate2Model, CTranslate2Translator
from captioning.translation.marian import MarianTranslator
from tests.support import synthetic

VOCAB = 65001  # opus-mt-en-es's
WORDS = """
a the small big red green blue yellow white black dog cat man woman child car house tree street
table chair window door ball bird sits stands runs looks holds near under on in with next to
behind and of picture photo two three old young tall short wooden open closed
""".split()  # noqa: SIM905 (a word list reads best as words)


def opus_sized_model(folder: Path, tokens: int, rng: random.Random) -> None:
    """A Marian of opus-mt-en-es's shape, and a tokenizer whose vocabulary is as large (the
    small trained one, its vocab.json padded to 65001 entries with <pad> last)."""
    english = [" ".join(rng.choice(WORDS) for _ in range(11)) for _ in range(200)] + WORDS
    small = Path(tempfile.mkdtemp(prefix="bench-tokenizer-"))
    synthetic.translation_tokenizer(english, english[:50]).save_pretrained(small)
    vocab = json.loads((small / "vocab.json").read_text(encoding="utf-8"))
    pieces = [piece for piece, _ in sorted(vocab.items(), key=lambda kv: kv[1]) if piece != "<pad>"]
    pieces += [f"<filler_{i}>" for i in range(len(pieces), VOCAB - 1)] + ["<pad>"]
    (small / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}), encoding="utf-8")
    # A fresh tokenizer from the files: a saved tokenizer_config.json would keep <pad> at its old id.
    MarianTokenizer(
        str(small / "source.spm"), str(small / "target.spm"), str(small / "vocab.json")
    ).save_pretrained(folder)
    tokenizer = MarianTokenizer.from_pretrained(folder)
    shape = dataclasses.replace(synthetic.SHAPES["full"], marian_vocab=VOCAB)
    model = synthetic.build_translator(shape, tokenizer, fixed_length=tokens)
    model.generation_config.forced_eos_token_id = None  # exactly `tokens` of text, both ways
    model.config.forced_eos_token_id = None
    model.save_pretrained(folder)


def best_of(repeats: int, runs: dict[str, callable]) -> dict[str, float]:
    """Each run's fastest time, the runs interleaved so that each sees the same machine."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    return {name: min(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,16,64", help="sentences per batch, comma-separated")
    parser.add_argument("--tokens", type=int, default=20, help="new tokens per sentence, both backends")
    parser.add_argument("--beams", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads", type=int, default=1, help="threads for each backend (1: fair on a busy machine)"
    )
    parser.add_argument("--record", action="store_true", help="append the table to docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = random.Random(0)
    sizes = [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work, "opus-sized")
        opus_sized_model(folder, args.tokens, rng)
        settings = EngineSettings.from_env({}).with_overrides(
            translation_num_beams=args.beams,
            translation_max_new_tokens=args.tokens,
            ct2_cache_dir=str(Path(work, "ct2")),
        )
        ref = ModelRef(str(folder))
        common = {"role": "translation", "setting": "TRANSLATION_MODELS"}
        plain = MarianTranslator.load(ref, settings, torch.device("cpu"), torch.float32, **common)
        started = time.perf_counter()
        model = CTranslate2Model(ref.name, settings, "cpu", **common, threads=args.threads)
        converted = time.perf_counter() - started
        fast = CTranslate2Translator(
            model, num_beams=args.beams, max_new_tokens=args.tokens, target_token=None
        )
        parameters = synthetic.count_parameters(plain.model)
        corpus = [" ".join(rng.choice(WORDS) for _ in range(11)) for _ in range(max(sizes))]
        rows = []
        for n in sizes:
            texts = corpus[:n]
            plain.translate(texts), fast.translate(texts)  # warm-up
            runs = {
                "transformers": lambda t=texts: plain.translate(t),
                "ct2": lambda t=texts: fast.translate(t),
            }
            best = best_of(args.repeats, runs)
            ratio = best["transformers"] / best["ct2"]
            rows.append((n, n / best["transformers"], n / best["ct2"], ratio))
            slow_rate, fast_rate = n / best["transformers"], n / best["ct2"]
            print(f"{n:>3} sentences: {slow_rate:.2f} -> {fast_rate:.2f} sentences/s ({ratio:.2f}x)")
    table = [
        "### Translation: transformers against CTranslate2 (int8), opus-mt-en-es's size",
        "",
        *header(),
        f"- model: random-weight Marian, {parameters / 1e6:.1f} M parameters (d_model 512, 6 + 6 layers, "
        f"vocabulary {VOCAB}), sentences of about 12 tokens, {args.tokens} new tokens each, "
        f"{args.beams} beams, {args.threads} thread(s) each, fastest of {args.repeats}; "
        f"converting it to CTranslate2 took {converted:.1f} s, once",
        "",
        "| sentences | transformers (sentences/s) | CTranslate2 int8 (sentences/s) | speed-up |",
        "|---:|---:|---:|---:|",
        *[f"| {n} | {a:.2f} | {b:.2f} | {r:.2f}x |" for n, a, b, r in rows],
        "",
        "Target: at least 2.5x at 16 sentences.",
        "",
    ]
    publish(table, keep=args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
