"""A tiny Florence-2 that finds shapes, built like the tiny reader and trained in seconds on
``<OD>``: each of :data:`LAYOUTS` (squares and circles at known places) to its objects' names
and boxes, as Florence-2 writes them ("square<loc_55><loc_78><loc_255><loc_375>..."); and on
``<MORE_DETAILED_CAPTION>``, to a known paragraph about each (:data:`PARAGRAPHS`), the long
description it writes beside BLIP-2.

Its tokenizer has the ``<loc_N>`` tokens the layouts need, as special tokens (the hub's have all
1000), and its processor parses ``<OD>``'s answers, so the engine's Florence adapter offers
"where" with it, through the same loading code as the real models.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image, ImageDraw
from transformers import Florence2Processor

from tests.support.tiny_reader import PAD, SHAPES, _labels, build_model, build_processor, ocr_tokenizer

# A picture: three columns and two rows of places a shape can be.
SIZE = (90, 60)
PLACES = {(column, row): (8 + 30 * column, 6 + 30 * row) for column in range(3) for row in range(2)}
SIDE = 16  # a shape's size, px
# The layouts it knows, and where things are in each, as the bot says it.
LAYOUTS: dict[str, tuple[tuple[str, tuple[int, int]], ...]] = {
    "On the left: a square. On the right: a circle.": (("square", (0, 0)), ("circle", (2, 1))),
    "In the middle: a circle.": (("circle", (1, 0)),),
    "On the left: 2 squares. On the right: a circle.": (
        ("square", (0, 0)),
        ("square", (0, 1)),
        ("circle", (2, 0)),
    ),
    "On the left: a circle. In the middle: a square and a circle.": (
        ("circle", (0, 1)),
        ("square", (1, 0)),
        ("circle", (1, 1)),
    ),
    "": (),
}
# Each layout's long description (<MORE_DETAILED_CAPTION>), and its Spanish, which the tiny
# en->es model is taught (tests.support.tiny_models).
PARAGRAPHS: dict[str, tuple[str, str]] = {
    "On the left: a square. On the right: a circle.": (
        "A square and a circle on a grey background. The square is on the left.",
        "Un cuadrado y un círculo sobre un fondo gris. El cuadrado está a la izquierda.",
    ),
    "In the middle: a circle.": (
        "A circle on a grey background. It is in the middle.",
        "Un círculo sobre un fondo gris. Está en el centro.",
    ),
    "On the left: 2 squares. On the right: a circle.": (
        "Two squares and a circle on a grey background. The circle is on the right.",
        "Dos cuadrados y un círculo sobre un fondo gris. El círculo está a la derecha.",
    ),
    "On the left: a circle. In the middle: a square and a circle.": (
        "Two circles and a square on a grey background. The square is in the middle.",
        "Dos círculos y un cuadrado sobre un fondo gris. El cuadrado está en el centro.",
    ),
    "": ("A plain grey background with nothing on it.", "Un fondo gris liso sin nada encima."),
}
# What Florence2Processor makes of <OD> and <MORE_DETAILED_CAPTION>.
OD_PROMPT = "Locate the objects with category name in the image."
DETAILED_PROMPT = "Describe with a paragraph what is shown in the image."
TASKS = ("<OD>", "<MORE_DETAILED_CAPTION>")
SHIFT = 2  # px of jitter in training


def draw_layout(words: str, rng: random.Random) -> Image.Image:
    """The layout :data:`LAYOUTS` names ``words``, its places and shades jittered a little."""
    picture = Image.new("RGB", SIZE, tuple(235 + rng.randint(-10, 10) for _ in range(3)))
    draw = ImageDraw.Draw(picture)
    for name, place in LAYOUTS[words]:
        x, y = (v + rng.randint(-SHIFT, SHIFT) for v in PLACES[place])
        ink = tuple(30 + rng.randint(-20, 20) for _ in range(3))
        (draw.rectangle if name == "square" else draw.ellipse)((x, y, x + SIDE, y + SIDE), fill=ink)
    return picture


def layout(words: str) -> Image.Image:
    """The layout drawn as the tests send it: no jitter."""
    picture = Image.new("RGB", SIZE, (235, 235, 235))
    draw = ImageDraw.Draw(picture)
    for name, place in LAYOUTS[words]:
        x, y = PLACES[place]
        (draw.rectangle if name == "square" else draw.ellipse)((x, y, x + SIDE, y + SIDE), fill=(30, 30, 30))
    return picture


def target(words: str) -> str:
    """What <OD> writes for the layout: each name, then its box in thousandths of the picture."""

    def bins(x: int, y: int) -> str:
        return "".join(
            f"<loc_{min(999, int(v / size * 1000))}>"
            for v, size in ((x, SIZE[0]), (y, SIZE[1]), (x + SIDE, SIZE[0]), (y + SIDE, SIZE[1]))
        )

    return "".join(f"{name}{bins(*PLACES[place])}" for name, place in LAYOUTS[words])


def build_trained_locator(folder: Path | str, seed: int = 0, steps: int = 110) -> Path:
    """Build, train (on one thread: the weights depend on the thread count) and save it."""
    folder = Path(folder)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        rng = random.Random(seed)
        shape = SHAPES["tiny"]
        targets = [target(words) for words in LAYOUTS]
        locs = sorted({token for t in targets for token in _loc_tokens(t)})
        paragraphs = [english for english, _ in PARAGRAPHS.values()]
        tokenizer = ocr_tokenizer(
            [OD_PROMPT, DETAILED_PROMPT, *paragraphs, "square circle", "square", "circle"] * 8
        )
        tokenizer.add_tokens(locs, special_tokens=True)
        processor = build_processor(shape, tokenizer)
        processor.post_processor.parse_task_config["description_with_bboxes"] = {}
        processor.post_processor_config = processor.post_processor.parse_task_config
        model = build_model(shape, tokenizer, vision_init=0.1, text_init=0.2)
        model.generation_config.max_new_tokens = 40
        _train(processor, model, rng, steps)
        processor.save_pretrained(folder)
        model.save_pretrained(folder)
        return folder
    finally:
        torch.set_num_threads(threads)


def _loc_tokens(text: str) -> list[str]:
    return [f"<loc_{part.split('>')[0]}>" for part in text.split("<loc_")[1:]]


def _train(processor: Florence2Processor, model, rng: random.Random, steps: int, copies: int = 4) -> None:
    """Both tasks in every step: each layout ``copies`` times, asked <OD> and asked for its paragraph."""
    words = list(LAYOUTS) * copies
    targets = [target(w) for w in words] + [PARAGRAPHS[w][0] for w in words]
    labels = _labels(processor.tokenizer, targets)
    blank = Image.new("RGB", (8, 8))
    prompts = [processor(text=task, images=blank, return_tensors="pt") for task in TASKS]
    width = max(p.input_ids.shape[1] for p in prompts)
    # Each task's prompt for its rows, padded on the right to the longer one.
    input_ids = torch.cat([_padded(p.input_ids, width, PAD).expand(len(words), -1) for p in prompts])
    attention = torch.cat([_padded(p.attention_mask, width, 0).expand(len(words), -1) for p in prompts])
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / 10, 1.0 - 0.9 * s / steps)
    )
    model.train()
    for _ in range(steps):
        drawn = [draw_layout(w, rng) for w in words * len(TASKS)]
        pixel_values = processor.image_processor(drawn, return_tensors="pt").pixel_values
        loss = model(
            input_ids=input_ids, attention_mask=attention, pixel_values=pixel_values, labels=labels
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()


def _padded(row: torch.Tensor, width: int, value: int) -> torch.Tensor:
    return torch.nn.functional.pad(row, (0, width - row.shape[1]), value=value)
