"""What the benchmarks share: random-weight engines, camera-like pictures, the record header."""

from __future__ import annotations

import datetime as dt
import io
import os
import platform
import sys
from pathlib import Path

import torch
from PIL import Image

from captioning.models.loading import quiet_transformers

# Before the model classes load: transformers' advice (no torchvision, say) is noise here.
quiet_transformers()

from captioning import Engine, EngineSettings  # noqa: E402
from captioning.models.blip2 import Blip2  # noqa: E402
from captioning.translation.marian import MarianTranslator  # noqa: E402
from captioning.translation.texts import Translations  # noqa: E402
from tests.support import synthetic  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS_MD = ROOT / "docs" / "benchmarks.md"

CORPUS_EN = ["a photo of a cat on a sofa", "a man riding a bicycle", "a plate of food on a table"]
CORPUS_ES = ["una foto de un gato en un sofá", "un hombre en bicicleta", "un plato de comida en una mesa"]


def random_engine(
    shape: str, *, device: str = "cpu", dtype: str = "float32", tokens: int = 20, folder: Path | None = None
) -> Engine:
    """An engine over random-weight models of ``synthetic.SHAPES[shape]``.

    Every caption and translation is exactly ``tokens`` long, so timed runs do the same work
    however they are batched. With ``folder``, the models are saved there and loaded back
    through the engine's real ``from_pretrained`` path; without it they stay in memory (the
    full-size models are 3.9 B parameters: no point writing them out and reading them back).
    """
    spec = synthetic.SHAPES[shape]
    settings = EngineSettings.from_env({}).with_overrides(
        device=device,
        dtype=dtype,
        caption_max_new_tokens=tokens,
        answer_max_new_tokens=tokens,
        translation_max_new_tokens=tokens,
    )
    processor, captioner = synthetic.build_captioner(
        spec, synthetic.caption_tokenizer(CORPUS_EN * 4), fixed_length=tokens
    )
    tokenizer = synthetic.translation_tokenizer(CORPUS_EN, CORPUS_ES)
    translator = synthetic.build_translator(spec, tokenizer, fixed_length=tokens)
    if folder is not None:
        caption_dir, translation_dir = synthetic.save_models(
            folder, processor, captioner, tokenizer, translator
        )
        return Engine.load(
            settings.with_overrides(caption_model=str(caption_dir), translation_model=str(translation_dir)),
            questions=False,
        )
    torch_device = torch.device("cuda:0" if device == "cuda" else device)
    torch_dtype = getattr(torch, dtype)
    marian = MarianTranslator(
        tokenizer,
        translator.to(torch_device, torch_dtype).eval(),
        max_new_tokens=settings.translation_max_new_tokens,
        num_beams=settings.translation_num_beams,
    )
    blip2 = Blip2(processor, captioner.to(torch_device, torch_dtype).eval(), settings)
    return Engine([blip2], settings, translations=Translations({"es": marian}))


def jpeg(size: tuple[int, int] = (640, 480), seed: int = 0) -> bytes:
    """A camera-like JPEG (noise): decoding and resizing cost what they do in life."""
    buffer = io.BytesIO()
    Image.effect_noise(size, 30 + seed % 40).convert("RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    text = (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu}), torch {torch.__version__}"
    )
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


def this_command() -> str:
    """How this benchmark was run (``python -m bench.x ...``), less ``--record``."""
    module = sys.modules["__main__"].__spec__.name
    return " ".join(["python -m", module, *(a for a in sys.argv[1:] if a != "--record")])


def header(command: str | None = None) -> list[str]:
    """The lines every recorded table starts with: date, machine, command (default: this run's)."""
    return [
        f"- date: {dt.date.today().isoformat()}",
        f"- machine: {machine()}",
        f"- command: `{command or this_command()}`",
    ]


def record(lines: list[str]) -> None:
    """Append a table to docs/benchmarks.md."""
    with BENCHMARKS_MD.open("a", encoding="utf-8") as out:
        out.write("\n" + "\n".join(lines) + "\n")


def publish(lines: list[str], *, keep: bool) -> None:
    """Print a table, and with ``keep`` (--record) append it to docs/benchmarks.md too."""
    print("\n".join(lines))
    if keep:
        record(lines)
