"""A tiny Florence-2, built from a config and trained in seconds to read signs drawn by Pillow.

Real transformers classes throughout: ``Florence2ForConditionalGeneration`` (a DaViT vision
tower and a BART encoder-decoder) and ``Florence2Processor`` (``CLIPImageProcessorPil`` and a
byte-level BPE ``BartTokenizer`` trained here, with BART's special tokens at BART's ids, plus
"<image>"). It is written with ``save_pretrained`` and read back by the engine's real loading
code (``AutoProcessor`` + ``Florence2ForConditionalGeneration.from_pretrained``), asked with
the ``<OCR>`` task prompt.

It reads :data:`SIGNS` exactly, wherever on the picture and in whichever of the
:data:`PALETTE`'s colours they are drawn, and a picture without text as "".
"""

from __future__ import annotations

import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    BartConfig,
    BartTokenizer,
    CLIPImageProcessorPil,
    Florence2Config,
    Florence2ForConditionalGeneration,
    Florence2Processor,
    Florence2VisionConfig,
)

# BART's special tokens at BART's ids (<mask> is 50264 in BART; 4 here).
BART_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
BOS, PAD, EOS = 0, 1, 2
IMAGE_TOKEN = "<image>"
# Florence-2's preprocessing (hub preprocessor_config): ImageNet mean/std, bicubic, no crop.
IMAGE_MEAN = [0.485, 0.456, 0.406]
IMAGE_STD = [0.229, 0.224, 0.225]
# What Florence2Processor turns "<OCR>" into before tokenizing.
OCR_QUESTION = "What is the text in the image?"

# The signs and what <OCR> must read on each; "" is a picture with no text.
SIGNS = ["STOP", "EXIT", "OPEN 24 HOURS", "BUS 42\nCITY CENTRE", ""]
# (background, ink): dark ink on light grounds. One polarity keeps training short; with
# white-on-red / white-on-blue added, the same recipe needed 2-3x the steps.
PALETTE = [
    ((245, 215, 40), (10, 10, 10)),
    ((250, 250, 245), (170, 20, 20)),
    ((150, 210, 250), (10, 30, 120)),
]
FONT_SIZE = 22  # ImageFont.load_default(size=...) is Pillow's bundled FreeType font: no files needed
# A sign is its text plus a margin (MARGIN of the text's width at each side, of its height above and
# below). ANCHORS put the text centred / up-left / down-right in the spare room; every picture is
# then jittered by up to SHIFT px and SHADE colour levels per channel.
MARGIN = (0.3, 0.6)
ANCHORS = [(0.5, 0.5), (0.2, 0.25), (0.8, 0.75)]
SHIFT, SHADE = 3, 12
BLANK_SIZE = (110, 60)


@dataclass(frozen=True)
class Shape:
    """Sizes of a Florence-2. ``image_size`` is the square the processor resizes every picture to."""

    image_size: int
    depths: tuple[int, ...]
    embed_dim: tuple[int, ...]
    num_heads: tuple[int, ...]  # also num_groups (channel attention), as in the hub configs
    window_size: int
    d_model: int
    encoder_layers: int
    decoder_layers: int
    attention_heads: int
    ffn_dim: int
    max_text_positions: int
    vocab_size: int | None = None  # None: the trained tokenizer's size
    mlp_ratio: float = 4.0

    @property
    def num_image_tokens(self) -> int:
        # Stage strides 4, 2, 2, 2 (kernels 7, 3, 3, 3, padding 3, 1, 1, 1) halve the grid per stage.
        side = self.image_size // (4 * 2 ** (len(self.depths) - 1))
        return side * side + 1  # the grid, + 1 temporal (mean-pooled) token


SHAPES = {
    # Reads SIGNS exactly after 150 steps, in every palette; trained 200 for a margin (20 s on
    # one CPU core; 300 steps were 30 s, the longest of the tiny models to build). 64 px, 3 stages ->
    # a 4 x 4 grid + 1 = 17 image tokens.
    "tiny": Shape(64, (1, 1, 1), (32, 64, 128), (2, 4, 8), 4, 128, 1, 1, 4, 256, 64, mlp_ratio=2.0),
    # A CPU benchmark's: 14 M weights, at the hub models' 768 px (577 image tokens), its weight
    # in the decoder (BART 384 wide, 3 + 3 layers), as in the real models, where decoding a
    # text costs more than seeing the picture.
    "bench": Shape(768, (1, 1, 1, 1), (16, 32, 64, 128), (1, 2, 4, 8), 12, 384, 3, 3, 6, 1536, 1024),
    # florence-community/Florence-2-base / -large (0.23B / 0.77B): DaViT depths (1, 1, 9, 1),
    # window 12, 768 px; BART-base / BART-large; vocabulary 51289 + "<image>", padded to 51328.
    "base": Shape(
        768, (1, 1, 9, 1), (128, 256, 512, 1024), (4, 8, 16, 32), 12, 768, 6, 6, 12, 3072, 1024, 51328
    ),
    "large": Shape(
        768, (1, 1, 9, 1), (256, 512, 1024, 2048), (8, 16, 32, 64), 12, 1024, 12, 12, 16, 4096, 1024, 51328
    ),
}


def ocr_tokenizer(corpus: list[str]) -> BartTokenizer:
    """A byte-level BPE trained on ``corpus``, with BART's special tokens and ids, plus "<image>"."""
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        corpus, vocab_size=400, min_frequency=1, special_tokens=BART_SPECIALS, show_progress=False
    )
    with tempfile.TemporaryDirectory() as folder:
        trainer.save_model(folder)
        lines = Path(folder, "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#")]
    # extra_special_tokens gives tokenizer.image_token / .image_token_id, which Florence2Processor
    # requires; "<image>" becomes an added special token after the trained vocabulary.
    return BartTokenizer(
        vocab=trainer.get_vocab(), merges=merges, extra_special_tokens={"image_token": IMAGE_TOKEN}
    )


def build_processor(shape: Shape, tokenizer: BartTokenizer) -> Florence2Processor:
    image_processor = CLIPImageProcessorPil(
        do_resize=True,
        size={"height": shape.image_size, "width": shape.image_size},
        resample=3,  # bicubic
        do_center_crop=False,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
        do_convert_rgb=True,
        image_seq_length=shape.num_image_tokens,  # -> Florence2Processor.num_image_tokens
    )
    # post_process_generation raises "Unsupported parse task" for a parse type missing here.
    post_processor_config = {"pure_text": {}, "ocr": {"pattern": None, "area_threshold": 0.0}}
    return Florence2Processor(image_processor, tokenizer, post_processor_config=post_processor_config)


def build_model(
    shape: Shape, tokenizer: BartTokenizer, *, fixed_length: int | None = None, **init
) -> Florence2ForConditionalGeneration:
    """A Florence-2 with random weights. ``init``: vision_init / text_init standard deviations."""
    stages = len(shape.depths)
    vocab = max(shape.vocab_size or 0, len(tokenizer))
    vocab += -vocab % 8
    vision = Florence2VisionConfig(
        depths=list(shape.depths),
        patch_size=[7, 3, 3, 3][:stages],
        patch_stride=[4, 2, 2, 2][:stages],
        patch_padding=[3, 1, 1, 1][:stages],
        patch_prenorm=[False, True, True, True][:stages],
        embed_dim=list(shape.embed_dim),
        num_heads=list(shape.num_heads),
        num_groups=list(shape.num_heads),
        window_size=shape.window_size,
        mlp_ratio=shape.mlp_ratio,
        drop_path_rate=0.0,
        projection_dim=shape.d_model,  # image features are written into BART's input embeddings
        max_position_embeddings=50,  # learned 2D positions: rows/cols of the last grid, <= 50
        initializer_range=init.get("vision_init", 0.02),
    )
    text = BartConfig(
        vocab_size=vocab,
        d_model=shape.d_model,
        encoder_layers=shape.encoder_layers,
        decoder_layers=shape.decoder_layers,
        encoder_attention_heads=shape.attention_heads,
        decoder_attention_heads=shape.attention_heads,
        encoder_ffn_dim=shape.ffn_dim,
        decoder_ffn_dim=shape.ffn_dim,
        max_position_embeddings=shape.max_text_positions,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        init_std=init.get("text_init", 0.02),
        bos_token_id=BOS,
        pad_token_id=PAD,
        eos_token_id=EOS,
        decoder_start_token_id=EOS,
        forced_eos_token_id=EOS,
    )
    config = Florence2Config(vision_config=vision, text_config=text, image_token_id=tokenizer.image_token_id)
    model = Florence2ForConditionalGeneration(config)
    generation = model.generation_config
    generation.bos_token_id, generation.pad_token_id, generation.eos_token_id = BOS, PAD, EOS
    generation.decoder_start_token_id = EOS
    generation.num_beams, generation.do_sample, generation.max_new_tokens = 1, False, 20
    if fixed_length:  # for timing random weights: never stop before this many tokens
        generation.min_new_tokens = fixed_length
    return model.eval()


def build_random_model(folder: Path | str, shape: str = "bench", fixed_length: int | None = 20) -> Path:
    """Save a random-weight processor + model of ``SHAPES[shape]`` (for CPU benchmarks)."""
    tokenizer = ocr_tokenizer([OCR_QUESTION, *SIGNS] * 8)
    processor = build_processor(SHAPES[shape], tokenizer)
    model = build_model(SHAPES[shape], tokenizer, fixed_length=fixed_length)
    processor.save_pretrained(folder)
    model.save_pretrained(folder)
    return Path(folder)


def draw_sign(
    text: str, rng: random.Random, jitter: float = 1.0, palette: int | None = None, anchor: int | None = None
) -> Image.Image:
    """``text`` in one of the PALETTE's colours and at one of the ANCHORS (chosen by ``rng``
    unless given), jittered a little (``jitter`` scales it; 0: none)."""
    background, ink = PALETTE[palette] if palette is not None else rng.choice(PALETTE)

    def shade(rgb: tuple[int, int, int]) -> tuple[int, ...]:
        return tuple(max(0, min(255, v + round(jitter * rng.uniform(-SHADE, SHADE)))) for v in rgb)

    font = ImageFont.load_default(size=FONT_SIZE)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    left, top, right, bottom = measure.multiline_textbbox((0, 0), text, font=font, spacing=4, align="center")
    width, height = (round(right - left), round(bottom - top)) if text else BLANK_SIZE
    spare_x, spare_y = round(2 * MARGIN[0] * width), round(2 * MARGIN[1] * height)
    picture = Image.new("RGB", (width + spare_x, height + spare_y), shade(background))
    if text:
        ax, ay = ANCHORS[anchor] if anchor is not None else rng.choice(ANCHORS)
        x = min(max(ax * spare_x + jitter * rng.uniform(-SHIFT, SHIFT), 1), spare_x - 1)
        y = min(max(ay * spare_y + jitter * rng.uniform(-SHIFT, SHIFT), 1), spare_y - 1)
        draw = ImageDraw.Draw(picture)
        draw.multiline_text((x - left, y - top), text, fill=shade(ink), font=font, spacing=4, align="center")
    return picture


def _labels(tokenizer: BartTokenizer, texts: list[str]) -> torch.Tensor:
    """Decoder targets as Florence-2's: "<s>" + text + "</s>", padded with -100. The model shifts
    them right behind decoder_start_token_id "</s>", so generate's output is "</s><s>text</s>"."""
    ids = [[BOS, *tokenizer(t, add_special_tokens=False).input_ids, EOS] for t in texts]
    labels = torch.full((len(ids), max(map(len, ids))), -100)
    for row, seq in enumerate(ids):
        labels[row, : len(seq)] = torch.tensor(seq)
    return labels


def train(
    processor: Florence2Processor,
    model,
    rng: random.Random,
    steps: int = 300,
    copies: int = 4,
    lr: float = 2e-3,
) -> float:
    """Teacher-forced AdamW on freshly drawn, jittered signs (every sign ``copies`` times a step).

    The vision tower starts at a tenth of the learning rate, ramped to the full rate over steps
    50-150: at full rate from step 0 its features collapse to a constant (the untrained decoder
    can't use them yet, so they only add noise) and the model settles on the prior over SIGNS.
    """
    tokenizer = processor.tokenizer
    texts = SIGNS * copies
    labels = _labels(tokenizer, texts)
    prompt = processor(text="<OCR>", images=Image.new("RGB", (8, 8)), return_tensors="pt")
    input_ids = prompt.input_ids.expand(len(texts), -1)  # the "<OCR>" prompt is the same for all
    attention = prompt.attention_mask.expand(len(texts), -1)
    vision = [p for n, p in model.named_parameters() if ".vision_tower." in n]
    rest = [p for n, p in model.named_parameters() if ".vision_tower." not in n]
    optimizer = torch.optim.AdamW([{"params": vision}, {"params": rest}], lr=lr, weight_decay=0.0)

    def overall(s: int) -> float:  # 10 warm-up steps, then linear to 10 %
        return min((s + 1) / 10, 1.0 - 0.9 * s / steps)

    def ramp(s: int) -> float:
        return 0.1 + 0.9 * min(max((s - 50) / 100, 0.0), 1.0)

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, [lambda s: overall(s) * ramp(s), overall])
    model.train()
    for _ in range(steps):
        pictures = [draw_sign(t, rng) for t in texts]
        pixel_values = processor.image_processor(pictures, return_tensors="pt").pixel_values
        loss = model(
            input_ids=input_ids, attention_mask=attention, pixel_values=pixel_values, labels=labels
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    return loss.item()


def build_trained_ocr_model(folder: Path | str, seed: int = 0, steps: int = 200) -> Path:
    """Build, train and save (processor + model) the tiny OCR model in ``folder``.

    Trained on one thread: the weights (and so what is read) depend on the seed and the thread
    count, and one thread is also the fastest on a shared two-core machine."""
    folder = Path(folder)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(folder, seed, steps)
    finally:
        torch.set_num_threads(threads)


def _build(folder: Path, seed: int, steps: int) -> Path:
    torch.manual_seed(seed)
    rng = random.Random(seed)
    shape = SHAPES["tiny"]
    tokenizer = ocr_tokenizer([OCR_QUESTION, *SIGNS] * 8)
    processor = build_processor(shape, tokenizer)
    model = build_model(shape, tokenizer, vision_init=0.1, text_init=0.2)
    train(processor, model, rng, steps=steps)
    processor.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def sign(text: str, palette: int = 0) -> Image.Image:
    """``text`` drawn centred, in the palette's colours, without jitter: what the tests send."""
    return draw_sign(text, random.Random(0), jitter=0, palette=palette, anchor=0)
