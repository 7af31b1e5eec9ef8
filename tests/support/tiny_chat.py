"""A tiny chat vision-language model of SmolVLM's family (Idefics3), trained for seconds.

Built from configs, as SmolVLM is made: a SigLIP-like vision tower, a pixel-shuffle connector,
a Llama language model, a byte-level BPE tokenizer of its own with SmolVLM's special tokens,
SmolVLM's chat template, and Idefics3's image processor splitting a picture into tiles and a
global view (at 32 pixels a tile, so that pictures of other shapes take other numbers of
tiles, and a batch of them is padded as the real ones are). Saved with ``save_pretrained``,
it is loaded by the engine through the same ``from_pretrained`` calls as SmolVLM.

The tiny one is trained on the engine's own default prompts (:data:`PROMPTS`) to known
outputs: a picture of one of ``tiny_models.COLORS`` described is "a red square."; described in
detail, "a picture of a red square."; asked "what color is it?", "red"; asked "is it a
square?", "yes". It also writes Spanish, for ``CHAT_MODEL_LANGUAGES=es``, told to as the engine
tells it (:data:`SPANISH_PROMPTS`): "un cuadrado de color rojo." (not the tiny en->es model's
"un cuadrado rojo."), in detail "una imagen de un cuadrado de color rojo.", and asked
"¿de qué color es?", "rojo" (told "Answer in English.", "red"); an English question told
"Answer in Spanish." is answered as the en->es model would ("rojo", "sí"). :data:`SHAPES` also holds
SmolVLM-256M's and -500M's sizes, for ``bench.chat_fullsize`` (random weights, never trained).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3Processor,
    Idefics3VisionConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
)
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

from captioning.models.chat import told
from captioning.settings import EngineSettings

__all__ = [
    "PROMPTS",
    "SHAPES",
    "ChatShape",
    "build_chat_model",
    "build_trained_chat_model",
    "chat_caption_for",
    "chat_detailed_for",
    "chat_processor",
    "chat_spanish_for",
]

# The engine's default instructions, which the model is taught to follow.
PROMPTS = {
    kind: EngineSettings.model_fields[field].default
    for kind, field in (("describe", "caption_prompt"), ("describe_detailed", "detailed_prompt"))
}
# A question asked in Spanish, and the engine's words for the model with CHAT_MODEL_LANGUAGES=es:
# its prompts told "Answer in Spanish.", the question as asked, told which language to answer in.
SPANISH_QUESTION = "¿de qué color es?"
SPANISH_PROMPTS = {
    "describe": told(PROMPTS["describe"], "es"),
    "describe_detailed": told(PROMPTS["describe_detailed"], "es"),
    "answer": told(SPANISH_QUESTION, "es", "es"),
    "answer_in_english": told(SPANISH_QUESTION, "en", "es"),
}
# SmolVLM's special tokens: its turns, its image markers, and a tile's place in the grid.
SPECIALS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<fake_token_around_image>",
    "<image>",
    "<end_of_utterance>",
    "<global-img>",
    *(f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7)),
]
# SmolVLM-Instruct's chat template, as its processor ships it.
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)


@dataclass(frozen=True)
class ChatShape:
    """The sizes of an Idefics3 model and its processor. ``None`` vocabulary: the tokenizer's."""

    tile: int  # pixels a side the vision tower looks at
    patch: int
    scale_factor: int  # pixel shuffle: (tile / patch)^2 patches -> that / scale_factor^2 tokens a tile
    vision_hidden: int
    vision_ffn: int
    vision_layers: int
    vision_heads: int
    text_hidden: int
    text_ffn: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    longest_edge: int  # a picture's longest side is resized to this, then cut into tiles
    positions: int = 256
    vocab: int | None = None

    @property
    def image_seq_len(self) -> int:
        return (self.tile // self.patch) ** 2 // self.scale_factor**2


SHAPES = {
    # Trains to known outputs in about 5 CPU-seconds: 4 tokens a tile, 2 x 2 tiles at most.
    "tiny": ChatShape(32, 8, 2, 32, 64, 1, 2, 64, 128, 2, 4, 4, 64),
    # HuggingFaceTB/SmolVLM-256M-Instruct: SigLIP base-patch16-512 and SmolLM2-135M, 64 tokens
    # a 512-pixel tile; SmolVLM-500M-Instruct: the same with SmolLM2-360M.
    "smolvlm-256m": ChatShape(512, 16, 4, 768, 3072, 12, 12, 576, 1536, 30, 9, 3, 2048, 8192, 49280),
    "smolvlm-500m": ChatShape(512, 16, 4, 768, 3072, 12, 12, 960, 2560, 32, 15, 5, 2048, 8192, 49280),
}


def chat_caption_for(color: str) -> str:
    return f"a {color} square."


def chat_detailed_for(color: str) -> str:
    return f"a picture of a {color} square."


def chat_spanish_for(spanish_color: str, *, detailed: bool = False) -> str:
    """What the model writes told to in Spanish: "un cuadrado de color rojo."."""
    square = f"un cuadrado de color {spanish_color}."
    return f"una imagen de {square}" if detailed else square


def build_trained_chat_model(
    folder: Path,
    colors: dict[str, tuple[int, int, int]],
    questions: dict,
    spanish: dict[str, str],
    seed: int = 0,
) -> Path:
    """Build, train and save the model in ``folder``; ``questions``: English question -> its
    answer for a color (``tiny_models.QUESTIONS``); ``spanish``: each answer's Spanish ("red":
    "rojo", "yes": "sí").
    On one thread, as the other tiny models: the weights depend on the seed and the thread
    count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _build(folder, colors, questions, spanish, seed)
    finally:
        torch.set_num_threads(threads)


def _build(folder: Path, colors, questions: dict, spanish: dict[str, str], seed: int) -> Path:
    torch.manual_seed(seed)
    tasks = [(PROMPTS["describe"], chat_caption_for), (PROMPTS["describe_detailed"], chat_detailed_for)]
    tasks += list(questions.items())
    tasks += [
        (SPANISH_PROMPTS["describe"], lambda color: chat_spanish_for(spanish[color])),
        (SPANISH_PROMPTS["describe_detailed"], lambda color: chat_spanish_for(spanish[color], detailed=True)),
        (SPANISH_PROMPTS["answer"], lambda color: spanish[color]),
        (SPANISH_PROMPTS["answer_in_english"], lambda color: color),
    ]
    # An English question in a chat that reads Spanish is answered in Spanish too.
    tasks += [(told(q, "es"), lambda color, a=answer: spanish[a(color)]) for q, answer in questions.items()]
    answers = [answer(color) for _, answer in tasks for color in colors]
    processor = chat_processor(SHAPES["tiny"], [prompt for prompt, _ in tasks] + answers)
    model = build_chat_model(SHAPES["tiny"], processor)
    _train(processor, model, colors, tasks, random.Random(seed))
    processor.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder


def chat_processor(shape: ChatShape, corpus: list[str]) -> Idefics3Processor:
    """SmolVLM's processor at ``shape``'s sizes, with a byte-level BPE trained on ``corpus``."""
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        [*corpus, "User: Assistant:"] * 4,
        vocab_size=1000,
        min_frequency=1,
        special_tokens=SPECIALS,
        show_progress=False,
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=trainer._tokenizer,  # the trained BPE itself, wrapped as transformers does
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        additional_special_tokens=SPECIALS[3:],
    )
    images = Idefics3ImageProcessorPil(
        size={"longest_edge": shape.longest_edge},
        max_image_size={"longest_edge": shape.tile},
        do_image_splitting=True,
    )
    return Idefics3Processor(
        images, tokenizer, image_seq_len=shape.image_seq_len, chat_template=CHAT_TEMPLATE
    )


def build_chat_model(shape: ChatShape, processor: Idefics3Processor) -> Idefics3ForConditionalGeneration:
    """An Idefics3 model of ``shape`` with random weights, for ``processor``'s tokens."""
    tokenizer = processor.tokenizer
    config = Idefics3Config(
        vision_config=Idefics3VisionConfig(
            hidden_size=shape.vision_hidden,
            intermediate_size=shape.vision_ffn,
            num_hidden_layers=shape.vision_layers,
            num_attention_heads=shape.vision_heads,
            image_size=shape.tile,
            patch_size=shape.patch,
        ),
        text_config=LlamaConfig(
            vocab_size=max(shape.vocab or 0, len(tokenizer)),
            hidden_size=shape.text_hidden,
            intermediate_size=shape.text_ffn,
            num_hidden_layers=shape.text_layers,
            num_attention_heads=shape.text_heads,
            num_key_value_heads=shape.text_kv_heads,
            max_position_embeddings=shape.positions,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        ),
        scale_factor=shape.scale_factor,
        image_token_id=processor.image_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.update(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def _examples(processor: Idefics3Processor, colors, tasks, rng: random.Random) -> list[dict]:
    """Every color asked every task, at sizes that take 2x2, 1x2 and 2x1 tiles, in batches."""
    tokenizer, rows = processor.tokenizer, []
    for color, rgb in colors.items():
        for prompt, answer in tasks:
            for size in ((64, 64), (64, 30), (30, 64)):
                jittered = tuple(max(0, min(255, v + rng.randint(-25, 25))) for v in rgb)
                messages = [
                    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}
                ]
                text = processor.apply_chat_template(messages, add_generation_prompt=True)
                asked = processor(
                    images=[[Image.new("RGB", size, jittered)]], text=[text], return_tensors="pt"
                )
                target = tokenizer(f" {answer(color)}<end_of_utterance>", add_special_tokens=False).input_ids
                rows.append((asked, target))
    rng.shuffle(rows)
    return [_collated(rows[i : i + 30], tokenizer.pad_token_id) for i in range(0, len(rows), 30)]


def _collated(rows: list, pad: int) -> dict[str, torch.Tensor]:
    width = max(asked.input_ids.shape[1] + len(target) for asked, target in rows)
    tiles = max(asked.pixel_values.shape[1] for asked, _ in rows)
    input_ids = torch.full((len(rows), width), pad)
    labels = torch.full((len(rows), width), -100)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    tile = SHAPES["tiny"].tile
    pixels = torch.zeros((len(rows), tiles, 3, tile, tile))
    masks = torch.zeros((len(rows), tiles, tile, tile), dtype=torch.long)
    for row, (asked, target) in enumerate(rows):
        ids = [*asked.input_ids[0].tolist(), *target]
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        labels[row, len(ids) - len(target) : len(ids)] = torch.tensor(target)
        count = asked.pixel_values.shape[1]
        pixels[row, :count] = asked.pixel_values[0]
        masks[row, :count] = asked.pixel_attention_mask[0]
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "pixel_values": pixels,
        "pixel_attention_mask": masks,
        "labels": labels,
    }


def _train(processor, model, colors, tasks, rng: random.Random, steps: int = 100) -> None:
    batches = _examples(processor, colors, tasks, rng)
    optimizer = torch.optim.AdamW(model.parameters(), lr=4e-3)
    model.train()
    for step in range(steps):
        loss = model(**batches[step % len(batches)]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
