"""A tiny en->fr Marian whose French tokenizer makes the word boundary its own piece.

In opus-mt's layout (one shared vocabulary, ``</s>`` = 0, ``<unk>`` = 1, ``<pad>`` last, the
decoder starting from ``<pad>``), "un carré vert" is ``▁un ▁carré ▁ vert``: "vert" is a piece
without its ``▁``, so the space before it is a piece of its own, and that translation is one
token longer than the others. A beam search that stops too soon loses it ("un carrévert").

Built with real sentencepiece models and ``MarianTokenizer``, trained for seconds, and saved
with ``save_pretrained``, as :mod:`tests.support.tiny_models` builds its own.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import sentencepiece as spm
import torch
from transformers import MarianTokenizer

from tests.support import synthetic

__all__ = ["ENGLISH", "FRENCH", "PROBES", "build_boundary_translator"]

ENGLISH = ["a red square", "a green square", "a blue square", "a yellow square", "a white square"]
FRENCH = ["un carré rouge", "un carré vert", "un carré bleu", "un carré jaune", "un carré blanc"]
# What it was trained on, and texts it wasn't: where a search's choices are close.
PROBES = [*ENGLISH, "green", "a green", "green square", "red green", "a white green square", "square"]


def boundary_tokenizer(folder: Path) -> MarianTokenizer:
    """English in whole words; French by BPE, with "vert" a piece that never takes a ``▁``."""
    pieces = ["</s>", "<unk>"]
    for name, texts, options in (
        ("source", ENGLISH, {"model_type": "word", "vocab_size": 64}),
        ("target", FRENCH, {"model_type": "bpe", "vocab_size": 40, "user_defined_symbols": ["vert"]}),
    ):
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts * 4),
            model_prefix=str(folder / name),
            hard_vocab_limit=False,
            character_coverage=1.0,
            eos_id=0,
            unk_id=1,
            bos_id=-1,
            pad_id=-1,
            minloglevel=2,
            **options,
        )
        (folder / f"{name}.model").rename(folder / f"{name}.spm")
        processor = spm.SentencePieceProcessor(model_file=str(folder / f"{name}.spm"))
        found = map(processor.id_to_piece, range(processor.get_piece_size()))
        pieces += [p for p in found if p not in pieces]
    pieces.append("<pad>")
    (folder / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}), encoding="utf-8")
    return MarianTokenizer(str(folder / "source.spm"), str(folder / "target.spm"), str(folder / "vocab.json"))


def build_boundary_translator(folder: Path, *, seed: int = 2, steps: int = 60) -> Path:
    """The model, trained on :data:`ENGLISH` -> :data:`FRENCH` and saved in ``folder``."""
    from tests.support.tiny_models import _train_translator

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory(prefix="marian-spm-") as name:
        tokenizer = boundary_tokenizer(Path(name))
    model = synthetic.build_translator(synthetic.SHAPES["tiny"], tokenizer)
    _train_translator(tokenizer, model, ENGLISH, FRENCH, steps=steps)
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder
