"""Tiny BLIP-2 and Marian models, trained for seconds to known outputs.

A picture of one of :data:`COLORS` is captioned "a <color> square", and that caption is
translated to "un cuadrado <color>". The models are built by :mod:`captioning.synthetic`
(real transformers classes, real tokenizers), trained here, and saved with
``save_pretrained``, so the engine loads them through its real ``from_pretrained`` code.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image

from captioning import synthetic

# name -> (RGB, Spanish name)
COLORS: dict[str, tuple[tuple[int, int, int], str]] = {
    "red": ((220, 20, 20), "rojo"),
    "green": ((20, 170, 40), "verde"),
    "blue": ((30, 40, 220), "azul"),
    "yellow": ((240, 220, 30), "amarillo"),
    "white": ((255, 255, 255), "blanco"),
}


def caption_for(color: str) -> str:
    return f"a {color} square"


def translation_for(color: str) -> str:
    return f"un cuadrado {COLORS[color][1]}"


def square(color: str, size: int = 64) -> Image.Image:
    return Image.new("RGB", (size, size), COLORS[color][0])


def build_trained_models(folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """Build, train and save both models under ``folder``; returns their two folders."""
    torch.manual_seed(seed)
    rng = random.Random(seed)
    english = [caption_for(c) for c in COLORS]
    spanish = [translation_for(c) for c in COLORS]
    shape = synthetic.SHAPES["tiny"]

    processor, captioner = synthetic.build_captioner(shape, synthetic.caption_tokenizer(english * 8))
    _train_captioner(processor, captioner, rng)
    tokenizer = synthetic.translation_tokenizer(english, spanish)
    translator = synthetic.build_translator(shape, tokenizer)
    _train_translator(tokenizer, translator, english, spanish)
    return synthetic.save_models(folder, processor, captioner, tokenizer, translator)


def _jittered(rgb: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    return tuple(max(0, min(255, v + rng.randint(-25, 25))) for v in rgb)  # type: ignore[return-value]


def _train_captioner(processor, model, rng: random.Random, steps: int = 160) -> None:
    """Teach BLIP-2's language model to say the caption after the image tokens and BOS.

    The sequence is image tokens, then ``</s>`` + caption + ``</s>``, which is what
    ``generate`` starts from (image tokens + BOS) and where it should stop (EOS).
    """
    tokenizer = processor.tokenizer
    queries = model.config.num_query_tokens
    image_token = model.config.image_token_index
    names = list(COLORS)
    tails = {
        n: [
            synthetic.OPT_BOS_EOS,
            *tokenizer(caption_for(n), add_special_tokens=False).input_ids,
            synthetic.OPT_BOS_EOS,
        ]
        for n in names
    }
    longest = max(map(len, tails.values()))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = names * 3  # balanced: every color in every step
        pictures = [
            Image.new("RGB", (rng.choice([32, 64, 100]),) * 2, _jittered(COLORS[n][0], rng)) for n in batch
        ]
        pixel_values = processor.image_processor(pictures, return_tensors="pt").pixel_values
        input_ids = torch.full((len(batch), queries + longest), synthetic.OPT_PAD)
        attention = torch.zeros_like(input_ids)
        labels = torch.full((len(batch), longest), -100)
        for row, name in enumerate(batch):
            tail = torch.tensor(tails[name])
            input_ids[row, :queries] = image_token
            input_ids[row, queries : queries + len(tail)] = tail
            attention[row, : queries + len(tail)] = 1
            labels[row, : len(tail)] = tail
        logits = model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention).logits
        # Position t predicts token t + 1: the logits over the text part, shifted by one.
        predicted = logits[:, -longest:-1].reshape(-1, logits.shape[-1])
        loss = torch.nn.functional.cross_entropy(predicted, labels[:, 1:].reshape(-1), ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def _train_translator(tokenizer, model, english: list[str], spanish: list[str], steps: int = 150) -> None:
    batch = tokenizer(english, text_target=spanish, padding=True, return_tensors="pt")
    batch["labels"][batch["labels"] == tokenizer.pad_token_id] = -100
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
