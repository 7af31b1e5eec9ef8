"""Tiny BLIP-2 and Marian models, trained for seconds to known outputs.

Also a demo of the whole system without the 16 GB download: from a clone of the repository,

    python -m tests.support.tiny_models tiny-models

builds the models into ``tiny-models/`` (a minute or two on a laptop; reused after) and prints
the settings that point ``python -m captioning`` and ``python -m bot`` at them.

A picture of one of :data:`COLORS` is captioned "a <color> square", and that caption is
translated to "un cuadrado <color>". Asked "what color is it?", BLIP-2 answers "<color>"
("rojo" in Spanish); asked "is it a square?", "yes". The question model translates
"¿de qué color es?" to "what color is it?". The models are built by
:mod:`tests.support.synthetic` (real transformers classes, real tokenizers), trained here, and
saved with ``save_pretrained``, so the engine loads them through its real ``from_pretrained``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from captioning.questions import prompt
from tests.support import synthetic, tiny_chat, tiny_locator
from tests.support.tiny_chat import build_trained_chat_model, chat_caption_for, chat_detailed_for
from tests.support.tiny_reader import build_trained_ocr_model

# Bumped whenever what the models are trained on changes: cached models of another version
# are built again (see cached_models).
MODELS_VERSION = 6

# name -> (RGB, Spanish name)
COLORS: dict[str, tuple[tuple[int, int, int], str]] = {
    "red": ((220, 20, 20), "rojo"),
    "green": ((20, 170, 40), "verde"),
    "blue": ((30, 40, 220), "azul"),
    "yellow": ((240, 220, 30), "amarillo"),
    "white": ((255, 255, 255), "blanco"),
}


SPANISH_ANSWERS = {"yes": "sí", "no": "no"}
# A multi-target model, as opus-mt-tc-big's: English into French or Portuguese, by a token
# that starts the source text. name -> (French, Portuguese)
OTHER_LANGUAGES = {"fr": ">>fra<<", "pt": ">>por<<"}
COLOR_NAMES = {
    "red": ("rouge", "vermelho"),
    "green": ("vert", "verde"),
    "blue": ("bleu", "azul"),
    "yellow": ("jaune", "amarelo"),
    "white": ("blanc", "branco"),
}
OTHER_ANSWERS = {"yes": ("oui", "sim"), "no": ("non", "não")}
# English question -> its answer for a picture of ``color``.
QUESTIONS = {
    "what color is it?": lambda color: color,
    "is it a square?": lambda color: "yes",
}
# Spanish question -> English question, for the es->en model.
SPANISH_QUESTIONS = {"¿de qué color es?": "what color is it?", "¿es un cuadrado?": "is it a square?"}


@dataclass(frozen=True)
class TinyModels:
    """The model folders, and the environment that points the engine at them."""

    caption: Path
    translation: Path
    question: Path
    multi: Path  # English -> French (>>fra<<) or Portuguese (>>por<<)
    reader: Path  # a Florence-2 that reads tests.support.tiny_reader.SIGNS, and only reads
    chat: Path  # a chat model (SmolVLM's family) trained as tests.support.tiny_chat says
    locator: Path  # a Florence-2 that says where things are, and writes paragraphs (tiny_locator)

    def env(self, *, more_languages: bool = False, chat: bool = False) -> dict[str, str]:
        """Spanish; with ``more_languages``, French and Portuguese too, from one model; with
        ``chat``, the chat model as CAPTION_MODEL instead of BLIP-2."""
        translations = f"es={self.translation}"
        if more_languages:
            translations += "".join(
                f",{code}={self.multi}@{token}" for code, token in OTHER_LANGUAGES.items()
            )
        return {
            "CAPTION_MODEL": str(self.chat if chat else self.caption),
            "TRANSLATION_MODELS": translations,
            "QUESTION_TRANSLATION_MODELS": f"es={self.question}",
            "OCR_MODEL": str(self.reader),
            # The tiny reader learnt <OCR> alone: BLIP-2 writes the long description
            # (tests.support.tiny_locator's Florence-2 writes it where a test loads that one).
            "OCR_DETAILED_TASK": "",
        }

    def settings(self, **options: bool) -> dict[str, str]:
        """The same, as EngineSettings field names."""
        return {k.lower(): v for k, v in self.env(**options).items()}


def in_other(language: str, english: str) -> str:
    """The multi-target model's output: in_other("fr", "a red square") -> "un carré rouge"."""
    which = list(OTHER_LANGUAGES).index(language)
    if english.startswith("a ") and english.endswith(" square"):
        color = english.split()[1]
        return ("un carré ", "um quadrado ")[which] + COLOR_NAMES[color][which]
    return (COLOR_NAMES.get(english) or OTHER_ANSWERS[english])[which]


def spanish_for(english: str) -> str:
    """The en->es model's output for an answer: "red" -> "rojo", "yes" -> "sí"."""
    return COLORS[english][1] if english in COLORS else SPANISH_ANSWERS[english]


def caption_for(color: str) -> str:
    return f"a {color} square"


def translation_for(color: str) -> str:
    return f"un cuadrado {COLORS[color][1]}"


def chat_translation_for(color: str, *, detailed: bool = False) -> str:
    """The en->es model's output for the chat model's descriptions (tiny_chat)."""
    return f"una imagen de un cuadrado {COLORS[color][1]}." if detailed else f"{translation_for(color)}."


def square(color: str, size: int = 64) -> Image.Image:
    return Image.new("RGB", (size, size), COLORS[color][0])


def cached_models(cache: Path) -> TinyModels:
    """The models under ``cache``, built there first if the code that builds them changed.

    Safe for processes started together (the test workers of one run): one builds them while
    the others wait for it, and then use them."""
    import hashlib

    from filelock import FileLock

    code = b"".join(
        Path(module).read_bytes()
        for module in (
            __file__,
            synthetic.__file__,
            tiny_chat.__file__,
            tiny_locator.__file__,  # its paragraphs' Spanish is the en->es model's to learn
            build_trained_ocr_model.__code__.co_filename,
        )
    )
    import transformers

    # The chat model learns the engine's default prompts: another default, another model.
    versions = f"{MODELS_VERSION}:{torch.__version__}:{transformers.__version__}:{tiny_chat.PROMPTS}"
    versions += f":{tiny_chat.SPANISH_PROMPTS}"  # told as captioning.models.chat tells it
    key = hashlib.sha256(f"{versions}:{code!r}".encode()).hexdigest()[:16]
    folder = cache / key
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache / f"{key}.lock")):
        if not (folder / "complete").exists():
            build_trained_models(folder)
            (folder / "complete").touch()
    names = ("caption", "translation", "question", "multi", "reader", "chat", "locator")
    return TinyModels(*(folder / name for name in names))


def build_trained_models(folder: Path, seed: int = 0) -> TinyModels:
    """Build, train and save the models under ``folder``, in two processes that each train on
    one core. Their times on one core (reader and locator about 20 s each, the captioner and
    translators 12 s, the chat model 9 s) pair them: the reader, then the chat model; the
    language models, then the locator. Both cores stay busy to the end, 35 to 45 s."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        reader = pool.submit(build_trained_ocr_model, folder / "reader", seed=seed)
        language = pool.submit(_build_language_models, folder, seed)
        locator = pool.submit(tiny_locator.build_trained_locator, folder / "locator", seed=seed)
        chat = pool.submit(_build_chat_model, folder / "chat", seed)
        return TinyModels(*language.result(), reader.result(), chat.result(), locator.result())


def _build_chat_model(folder: Path, seed: int) -> Path:
    colors = {name: rgb for name, (rgb, _) in COLORS.items()}
    spanish = {**{name: word for name, (_, word) in COLORS.items()}, **SPANISH_ANSWERS}
    return build_trained_chat_model(folder, colors, QUESTIONS, spanish, seed=seed)  # QUESTIONS don't pickle


def _build_language_models(folder: Path, seed: int) -> tuple[Path, Path, Path, Path]:
    """The captioner and the three translators, trained on one thread."""
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    answers = sorted({answer(c) for answer in QUESTIONS.values() for c in COLORS})
    english = [caption_for(c) for c in COLORS] + answers
    spanish = [translation_for(c) for c in COLORS] + [spanish_for(a) for a in answers]
    shape = synthetic.SHAPES["tiny"]

    corpus = english * 8 + [prompt(q) for q in QUESTIONS] * 8
    processor, captioner = synthetic.build_captioner(shape, synthetic.caption_tokenizer(corpus))
    _train_captioner(processor, captioner, rng)
    # The en->es model also translates the chat model's sentences (tiny_chat), and the tiny
    # locator's long descriptions (tiny_locator.PARAGRAPHS).
    to_spanish = english + [chat_caption_for(c) for c in COLORS] + [chat_detailed_for(c) for c in COLORS]
    spanish += [chat_translation_for(c) for c in COLORS]
    spanish += [chat_translation_for(c, detailed=True) for c in COLORS]
    to_spanish += [paragraph for paragraph, _ in tiny_locator.PARAGRAPHS.values()]
    spanish += [translated for _, translated in tiny_locator.PARAGRAPHS.values()]
    tokenizer = synthetic.translation_tokenizer(to_spanish, spanish)
    translator = synthetic.build_translator(shape, tokenizer)
    _train_translator(tokenizer, translator, to_spanish, spanish)
    caption_dir, translation_dir = synthetic.save_models(folder, processor, captioner, tokenizer, translator)

    asked, meant = list(SPANISH_QUESTIONS), list(SPANISH_QUESTIONS.values())
    question_tokenizer = synthetic.translation_tokenizer(asked, meant)
    question_translator = synthetic.build_translator(shape, question_tokenizer)
    _train_translator(question_tokenizer, question_translator, asked, meant)
    question_dir = folder / "question"
    question_tokenizer.save_pretrained(question_dir)
    question_translator.save_pretrained(question_dir)

    sources = [f"{token} {text}" for token in OTHER_LANGUAGES.values() for text in english]
    targets = [in_other(code, text) for code in OTHER_LANGUAGES for text in english]
    multi_tokenizer = synthetic.translation_tokenizer(
        english, targets, target_tokens=list(OTHER_LANGUAGES.values())
    )
    multi = synthetic.build_translator(shape, multi_tokenizer)
    _train_translator(multi_tokenizer, multi, sources, targets, steps=250)
    multi_dir = folder / "multi"
    multi_tokenizer.save_pretrained(multi_dir)
    multi.save_pretrained(multi_dir)
    return caption_dir, translation_dir, question_dir, multi_dir


def _jittered(rgb: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    return tuple(max(0, min(255, v + rng.randint(-25, 25))) for v in rgb)  # type: ignore[return-value]


def _train_captioner(processor, model, rng: random.Random, steps: int = 150) -> None:
    """Teach BLIP-2's language model its captions, and its answers to the questions.

    A caption's sequence is the image tokens, then ``</s>`` + caption + ``</s>``, which is
    what ``generate`` starts from (image tokens + BOS) and where it should stop (EOS). A
    question's is the image tokens, ``</s>`` + ``Question: ... Answer:`` + answer + ``</s>``,
    and only the answer and its EOS are learnt.
    """
    tokenizer = processor.tokenizer
    queries = model.config.num_query_tokens
    image_token = model.config.image_token_index

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids

    # (color, prompt ids, target ids) for every color, captioned and asked each question.
    examples = []
    for color in COLORS:
        examples.append((color, [], ids(caption_for(color))))
        for question, answer in QUESTIONS.items():
            examples.append((color, ids(prompt(question)), ids(" " + answer(color))))
    width = queries + 1 + max(len(p) + len(t) + 1 for _, p, t in examples)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = examples * 2  # balanced: every color and question in every step
        pictures = [
            Image.new("RGB", (rng.choice([32, 64, 100]),) * 2, _jittered(COLORS[c][0], rng))
            for c, _, _ in batch
        ]
        pixel_values = processor.image_processor(pictures, return_tensors="pt").pixel_values
        input_ids = torch.full((len(batch), width), synthetic.OPT_PAD)
        attention = torch.zeros_like(input_ids)
        labels = torch.full_like(input_ids, -100)
        for row, (_, prompt_ids, target) in enumerate(batch):
            text = [synthetic.OPT_BOS_EOS, *prompt_ids, *target, synthetic.OPT_BOS_EOS]
            end = queries + len(text)
            input_ids[row, :queries] = image_token
            input_ids[row, queries:end] = torch.tensor(text)
            attention[row, :end] = 1
            learnt = queries + 1 + len(prompt_ids)
            labels[row, learnt:end] = input_ids[row, learnt:end]
        logits = model(pixel_values=pixel_values, input_ids=input_ids, attention_mask=attention).logits
        # Position t predicts token t + 1.
        predicted = logits[:, :-1].reshape(-1, logits.shape[-1])
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


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m tests.support.tiny_models",
        description="Build the tests' tiny trained models, and print the settings that use them.",
    )
    parser.add_argument(
        "folder", nargs="?", default="tiny-models", help="where to build them (default: tiny-models)"
    )
    args = parser.parse_args(argv)
    folder = Path(args.folder).resolve()
    print(f"Building the tiny models in {folder} (once; later runs reuse them)...", flush=True)
    models = cached_models(folder)
    lines = [f"{name}={value}" for name, value in models.env().items()] + ["DEVICE=cpu"]
    print(
        "\nThey describe a picture of one color as 'a red square' ('un cuadrado rojo'), and answer\n"
        "'what color is it?'. Put these lines in .env (or export them):\n\n"
        + "\n".join(lines)
        + "\n\nthen try:\n"
        "  python -m captioning some-picture.jpg\n"
        "  python -m bot            (with TELEGRAM_BOT_TOKEN in .env too)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
