"""BLIP-2 and MarianMT built from configs, with tokenizers trained on a small corpus.

Model weights can't be downloaded everywhere this project is tested, so the tests and the
benchmarks make their own models: real transformers classes and real tokenizers (a byte-level
BPE on the OPT side, like OPT's; sentencepiece for Marian, like opus-mt's), at a chosen size.
Weights start random; ``tests/`` trains the tiny ones to known outputs, ``bench/`` times the
random ones. :func:`save_models` writes folders that ``captioning.Engine.load`` reads with the
same ``from_pretrained`` calls as the hub models. Test and benchmark support: not installed
with the package.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import sentencepiece as spm
import torch
from tokenizers import ByteLevelBPETokenizer
from transformers import (
    Blip2Config,
    Blip2ForConditionalGeneration,
    Blip2Processor,
    Blip2QFormerConfig,
    Blip2VisionConfig,
    BlipImageProcessor,
    GPT2Tokenizer,
    MarianConfig,
    MarianMTModel,
    MarianTokenizer,
    OPTConfig,
)

__all__ = [
    "SHAPES",
    "Shape",
    "build_captioner",
    "build_translator",
    "caption_tokenizer",
    "save_models",
    "translation_tokenizer",
]

# OPT's special tokens, at OPT's ids: "</s>" is both BOS and EOS.
OPT_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
OPT_PAD, OPT_BOS_EOS = 1, 2
# CLIP's normalisation, which BLIP-2's image processor uses.
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]


@dataclass(frozen=True)
class Shape:
    """The sizes of a BLIP-2 + Marian pair. ``None`` vocabularies follow the tokenizer."""

    image_size: int
    patch_size: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    vision_ffn: int
    qformer_hidden: int
    qformer_layers: int
    qformer_heads: int
    qformer_ffn: int
    num_query_tokens: int
    text_hidden: int
    text_layers: int
    text_heads: int
    text_ffn: int
    marian_d_model: int
    marian_layers: int
    marian_heads: int
    marian_ffn: int
    text_vocab: int | None = None
    marian_vocab: int | None = None


SHAPES: dict[str, Shape] = {
    # Trains to known captions in seconds on two CPU cores.
    "tiny": Shape(64, 16, 32, 2, 4, 64, 32, 2, 4, 64, 8, 64, 2, 4, 128, 64, 2, 4, 128),
    # The CPU benchmark: a 224 px vision tower, 32 queries, a few OPT layers, and a Marian of
    # opus-mt's width and depth (its vocabulary is the small trained one).
    "bench": Shape(224, 14, 128, 2, 4, 512, 128, 2, 4, 512, 32, 256, 4, 4, 1024, 512, 6, 8, 2048),
    # Salesforce/blip2-opt-2.7b (ViT-g 39 x 1408, Q-Former 12 x 768, OPT 32 x 2560) and
    # Helsinki-NLP/opus-mt-en-es (512 wide, 6 + 6 layers), at their vocabulary sizes.
    "full": Shape(
        224,
        14,
        1408,
        39,
        16,
        6144,
        768,
        12,
        12,
        3072,
        32,
        2560,
        32,
        32,
        10240,
        512,
        6,
        8,
        2048,
        text_vocab=50304,
        marian_vocab=65001,
    ),
}


def caption_tokenizer(corpus: Iterable[str]) -> GPT2Tokenizer:
    """A byte-level BPE tokenizer trained on ``corpus``, with OPT's special tokens and ids."""
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(
        list(corpus), vocab_size=512, min_frequency=1, special_tokens=OPT_SPECIALS, show_progress=False
    )
    with tempfile.TemporaryDirectory() as folder:
        trainer.save_model(folder)
        lines = Path(folder, "merges.txt").read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#")]
    return GPT2Tokenizer(
        vocab=trainer.get_vocab(),
        merges=merges,
        unk_token="<unk>",
        bos_token="</s>",
        eos_token="</s>",
        pad_token="<pad>",
    )


def translation_tokenizer(
    english: Sequence[str], spanish: Sequence[str], target_tokens: Sequence[str] = ()
) -> MarianTokenizer:
    """A MarianTokenizer with a sentencepiece model per language and one shared vocabulary.

    ``target_tokens`` (``>>fra<<``, ...) make it a multi-target model's tokenizer: each is one
    whole entry of the vocabulary, as in opus-mt-tc-big's, to start the source text with.
    """
    with tempfile.TemporaryDirectory(prefix="marian-spm-") as name:
        # The tokenizer keeps both sentencepiece models in memory and writes them out again
        # from there in save_pretrained, so the folder can go.
        return _marian_tokenizer_in(Path(name), english, spanish, target_tokens)


def _marian_tokenizer_in(
    folder: Path, english: Sequence[str], spanish: Sequence[str], target_tokens: Sequence[str] = ()
) -> MarianTokenizer:
    pieces = ["</s>", "<unk>", *target_tokens]  # opus-mt's ids: </s> = 0, <unk> = 1, <pad> = last
    for name, texts in (("source", english), ("target", spanish)):
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(list(texts) * 4),
            model_prefix=str(folder / name),
            model_type="word",
            vocab_size=64,
            hard_vocab_limit=False,
            character_coverage=1.0,
            eos_id=0,
            unk_id=1,
            bos_id=-1,
            pad_id=-1,
            minloglevel=2,
        )
        (folder / f"{name}.model").rename(folder / f"{name}.spm")
        processor = spm.SentencePieceProcessor(model_file=str(folder / f"{name}.spm"))
        pieces += [
            p for p in map(processor.id_to_piece, range(processor.get_piece_size())) if p not in pieces
        ]
    pieces.append("<pad>")
    (folder / "vocab.json").write_text(json.dumps({p: i for i, p in enumerate(pieces)}), encoding="utf-8")
    return MarianTokenizer(str(folder / "source.spm"), str(folder / "target.spm"), str(folder / "vocab.json"))


def build_captioner(
    shape: Shape, tokenizer: GPT2Tokenizer, *, fixed_length: int | None = None
) -> tuple[Blip2Processor, Blip2ForConditionalGeneration]:
    """A BLIP-2 processor and model with random weights.

    ``fixed_length`` makes every caption exactly that many tokens (EOS is held back until
    then, through the saved generation config), so that timed runs of a random model do the
    same work however they are batched.
    """
    image_processor = BlipImageProcessor(
        size={"height": shape.image_size, "width": shape.image_size},
        image_mean=IMAGE_MEAN,
        image_std=IMAGE_STD,
        do_convert_rgb=True,
    )
    processor = Blip2Processor(image_processor, tokenizer, num_query_tokens=shape.num_query_tokens)
    vocab = max(shape.text_vocab or 0, len(processor.tokenizer))
    config = Blip2Config(
        vision_config=Blip2VisionConfig(
            hidden_size=shape.vision_hidden,
            intermediate_size=shape.vision_ffn,
            num_hidden_layers=shape.vision_layers,
            num_attention_heads=shape.vision_heads,
            image_size=shape.image_size,
            patch_size=shape.patch_size,
        ),
        qformer_config=Blip2QFormerConfig(
            hidden_size=shape.qformer_hidden,
            num_hidden_layers=shape.qformer_layers,
            num_attention_heads=shape.qformer_heads,
            intermediate_size=shape.qformer_ffn,
        ),
        text_config=OPTConfig(
            vocab_size=vocab,
            hidden_size=shape.text_hidden,
            num_hidden_layers=shape.text_layers,
            num_attention_heads=shape.text_heads,
            ffn_dim=shape.text_ffn,
            word_embed_proj_dim=shape.text_hidden,
            max_position_embeddings=2048,
            bos_token_id=OPT_BOS_EOS,
            eos_token_id=OPT_BOS_EOS,
            pad_token_id=OPT_PAD,
        ),
        num_query_tokens=shape.num_query_tokens,
        image_token_index=processor.tokenizer.convert_tokens_to_ids("<image>"),
    )
    model = Blip2ForConditionalGeneration(config)
    model.generation_config.pad_token_id = OPT_PAD
    model.generation_config.eos_token_id = OPT_BOS_EOS
    if fixed_length:
        model.generation_config.min_new_tokens = fixed_length
    return processor, model.eval()


def build_translator(
    shape: Shape, tokenizer: MarianTokenizer, *, fixed_length: int | None = None
) -> MarianMTModel:
    """A Marian model with random weights, shaped like opus-mt, for ``tokenizer``."""
    vocab = max(shape.marian_vocab or 0, len(tokenizer))
    pad = tokenizer.pad_token_id
    config = MarianConfig(
        vocab_size=vocab,
        decoder_vocab_size=vocab,
        d_model=shape.marian_d_model,
        encoder_layers=shape.marian_layers,
        decoder_layers=shape.marian_layers,
        encoder_attention_heads=shape.marian_heads,
        decoder_attention_heads=shape.marian_heads,
        encoder_ffn_dim=shape.marian_ffn,
        decoder_ffn_dim=shape.marian_ffn,
        max_position_embeddings=512,
        pad_token_id=pad,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=pad,
        forced_eos_token_id=tokenizer.eos_token_id,
        # opus-mt scales embeddings by sqrt(d_model); without it a small model's token
        # embeddings drown in the sinusoidal positions and it can't learn which word is which.
        scale_embedding=True,
        init_std=0.05,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    model = MarianMTModel(config)
    model.generation_config.pad_token_id = pad
    model.generation_config.decoder_start_token_id = pad
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.forced_eos_token_id = tokenizer.eos_token_id
    model.generation_config.bad_words_ids = [[pad]]
    if fixed_length:
        model.generation_config.min_new_tokens = fixed_length
    return model.eval()


def save_models(
    folder: Path,
    processor: Blip2Processor,
    captioner: Blip2ForConditionalGeneration,
    tokenizer: MarianTokenizer,
    translator: MarianMTModel,
) -> tuple[Path, Path]:
    """Write ``folder/caption`` and ``folder/translation``, ready for ``from_pretrained``."""
    caption_dir, translation_dir = Path(folder, "caption"), Path(folder, "translation")
    processor.save_pretrained(caption_dir)
    captioner.save_pretrained(caption_dir)
    tokenizer.save_pretrained(translation_dir)
    translator.save_pretrained(translation_dir)
    return caption_dir, translation_dir


def count_parameters(model: torch.nn.Module) -> int:
    """The number of weights in ``model``."""
    return sum(p.numel() for p in model.parameters())
