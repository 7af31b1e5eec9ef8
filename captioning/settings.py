"""The engine's settings: typed, validated, read once from the environment (and ``.env``).

Every field is read from the environment variable of the same name in upper case
(``CAPTION_MODEL``, ``DEVICE``, ...). ``.env.example`` lists them all with their defaults.
Command-line flags override them through :meth:`EngineSettings.with_overrides`.

An empty value means "not set" (the default applies), as in a ``.env`` copied with blank
lines, except for the optional models, where empty means "off": ``QUESTION_TRANSLATION_MODEL=``
turns Spanish questions off on purpose.

Languages are ISO 639-1 codes. ``TRANSLATION_MODELS`` lists the translations from English, as
``code=model`` pairs separated by commas; a model that translates into several languages takes
its target token after an ``@``::

    TRANSLATION_MODELS=es=Helsinki-NLP/opus-mt-en-es,fr=Helsinki-NLP/opus-mt-en-fr
    TRANSLATION_MODELS=pt=Helsinki-NLP/opus-mt-tc-big-en-pt@>>por<<
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import SettingsError
from .translation import BACKENDS  # names only: no backend is imported

__all__ = ["EngineSettings", "ModelRef", "parse_codes", "parse_models", "settings_error"]

DtypeSetting = Literal["auto", "float16", "bfloat16", "float32"]

# Optional models: empty means "none", on purpose, rather than "the default".
_EMPTY_MEANS_OFF = {
    "question_translation_model",
    "question_translation_models",
    "ocr_model",
    "ocr_detailed_task",
    "read_prompt",
}
_CODE = re.compile(r"^[a-z]{2}$")
_TARGET_TOKEN = re.compile(r"^>>[\w-]+<<$")


@dataclass(frozen=True)
class ModelRef:
    """A translation model: a hub id or folder, and the target token a multi-target model needs."""

    name: str
    target_token: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.target_token}" if self.target_token else self.name


def parse_models(text: str, setting: str) -> dict[str, ModelRef]:
    """``"es=Helsinki-NLP/opus-mt-en-es,pt=...@>>por<<"`` -> {"es": ModelRef(...), ...}, in order."""
    models: dict[str, ModelRef] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        code, sep, model = (part.strip() for part in entry.partition("="))
        code = code.lower()
        if not sep or not model:
            raise ValueError(
                f"{setting}: {entry!r} should be code=model, as in es=Helsinki-NLP/opus-mt-en-es"
            )
        if not _CODE.match(code) or code == "en":
            raise ValueError(f"{setting}: {code!r} should be a two-letter ISO 639-1 code other than en")
        if code in models:
            raise ValueError(f"{setting}: {code} is listed twice")
        name, at, token = model.rpartition("@")
        if at and _TARGET_TOKEN.match(token):
            models[code] = ModelRef(name, token)
        else:
            models[code] = ModelRef(model)
    return models


def parse_codes(text: str, setting: str) -> tuple[str, ...]:
    """``"es, fr"`` -> ("es", "fr"): ISO 639-1 codes other than en, each once, in order."""
    codes = tuple(code.strip().lower() for code in text.split(",") if code.strip())
    for code in codes:
        if not _CODE.match(code) or code == "en":
            raise ValueError(f"{setting}: {code!r} should be a two-letter ISO 639-1 code other than en")
    if len(set(codes)) < len(codes):
        raise ValueError(f"{setting}: a language is listed twice")
    return codes


class EngineSettings(BaseSettings):
    """What the engine loads, where it runs, and how it generates."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    caption_model: str = Field(
        "Salesforce/blip2-opt-2.7b", min_length=1, description="BLIP-2 hub id or local folder"
    )
    # English -> each language a chat may read. TRANSLATION_MODEL, when set, is the "es" entry.
    translation_models: str = "es=Helsinki-NLP/opus-mt-en-es"
    translation_model: str | None = None
    # Each language a question may be asked in -> English. QUESTION_TRANSLATION_MODEL, when
    # set, is the "es" entry; set to empty, it turns Spanish questions off.
    question_translation_models: str = "es=Helsinki-NLP/opus-mt-es-en"
    question_translation_model: str | None = None
    # How translations run: transformers, or CTranslate2 (converted once into CT2_CACHE_DIR;
    # int8 on the CPU, int8_float16 on a GPU, unless CT2_COMPUTE_TYPE says otherwise).
    # One of captioning.translation.BACKENDS.
    translation_backend: str = "transformers"
    ct2_cache_dir: str = Field(default_factory=lambda: _user_cache("ctranslate2"))
    ct2_compute_type: Literal[
        "auto",
        "int8",
        "int8_float32",
        "int8_float16",
        "int8_bfloat16",
        "int16",
        "float16",
        "bfloat16",
        "float32",
    ] = "auto"
    # Reading the text in pictures (Florence-2, <OCR>). Empty: reading is off.
    # florence-community/Florence-2-base (0.23 B) is the choice on a CPU.
    ocr_model: str = "florence-community/Florence-2-large"
    ocr_max_new_tokens: int = Field(1024, ge=1, le=4096)
    ocr_num_beams: int = Field(3, ge=1, le=16)
    # The long description where the caption model writes only one sentence (BLIP-2, whose
    # "detailed" caption is its short one with beam search): OCR_MODEL's Florence-2 writes it,
    # a paragraph, asked with this task. Empty: BLIP-2 writes it. A chat model writes its own.
    ocr_detailed_task: Literal["<MORE_DETAILED_CAPTION>", "<DETAILED_CAPTION>", ""] = (
        "<MORE_DETAILED_CAPTION>"
    )
    # int8 on the CPU: every Linear layer of the models in int8 (about 5x faster than float32,
    # in under half the memory, at full size). Not on a GPU.
    quantize: Literal["none", "int8"] = "none"
    # Where QUANTIZE=int8 keeps each model's int8 weights: the first start quantizes (about a
    # minute for BLIP-2 OPT-2.7b) and saves them, later ones load them. off: quantize each time.
    quantized_cache_dir: str = Field(default_factory=lambda: _user_cache("int8"))
    # The most that folder holds: past it, the files least recently used go (BLIP-2 OPT-2.7b's
    # is 4.3 GB; a redeploy of another revision adds one).
    int8_cache_max_gb: float = Field(20.0, gt=0)
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda|cuda:\d+)$",
        description="auto, cpu, cuda or cuda:N; auto picks the first GPU when there is one",
    )
    dtype: DtypeSetting = Field("auto", description="auto means float16 on a GPU and float32 on the CPU")
    # Alt text is read aloud by screen readers: one short sentence is the goal, so the caption
    # is capped well below BLIP-2's own limit, and greedy decoding keeps batches fast.
    caption_max_new_tokens: int = Field(30, ge=1, le=512)
    caption_num_beams: int = Field(1, ge=1, le=16)
    # The long description ("More detail", /detail long): beam search, and room for a paragraph
    # (Florence-2's or a chat model's run 80-150 tokens; BLIP-2 ends its own sooner). One cut
    # short by the limit ends at its last whole sentence.
    detailed_max_new_tokens: int = Field(200, ge=1, le=512)
    detailed_num_beams: int = Field(3, ge=1, le=16)
    # What a chat model (a CAPTION_MODEL with a chat template, captioning.models.chat) is
    # told, in English, beside the picture: for the short description (alt text, read aloud),
    # the detailed one, and reading the text in it. A question goes as it was asked.
    # READ_PROMPT is used where OCR_MODEL is empty; empty, the chat model doesn't read.
    caption_prompt: str = Field(
        "Describe this picture in one sentence for someone who can't see it, the most important thing first.",
        min_length=1,
    )
    detailed_prompt: str = Field(
        "Describe this picture in detail for someone who can't see it: first what it shows "
        "as a whole, then the people, any text word for word, the colours, and where things are.",
        min_length=1,
    )
    read_prompt: str = (
        "Write out all the text in this picture, word for word, line by line. "
        "If there is no text, write nothing."
    )
    # Languages a chat model (CAPTION_MODEL) writes in itself, told to ("... Answer in
    # Spanish."), instead of Marian translating its English: codes, comma-separated ("es,fr");
    # a question in one of them is put to it as asked. Empty, the default: English first, then
    # Marian, which reads best with small local models. BLIP-2 ignores it (a log line says so).
    chat_model_languages: str = ""
    # The longest side, in pixels, a chat model sees a picture at; 0: its processor's own.
    # SmolVLM's is 2048, in up to 16 tiles of 512 (64 tokens each): a 640 x 480 photo is 13
    # tiles, and on a CPU seeing them is most of a description's time. 512 is one tile.
    chat_picture_side: int = Field(0, ge=0, le=8192)
    # Answers to questions about a picture: a few words ("red", "two dogs").
    answer_max_new_tokens: int = Field(20, ge=1, le=512)
    answer_num_beams: int = Field(1, ge=1, le=16)
    # Marian is small next to BLIP-2: beam search costs little and reads better.
    translation_max_new_tokens: int = Field(80, ge=1, le=512)
    translation_num_beams: int = Field(4, ge=1, le=16)
    # Pictures in one forward pass; the CLI and the executor cut work into batches this big.
    # Unset: what suits the device (batch_size_for).
    max_batch_size: int | None = Field(None, ge=1, le=1024)
    # How long the executor holds a batch open for more pictures after the first arrives.
    max_batch_wait_ms: float = Field(10.0, ge=0, le=10_000)
    # Pictures waiting or in flight, in all; past it, people are asked to try again shortly.
    max_queue: int = Field(256, ge=1, le=1_000_000)
    # Pictures one person may have waiting at once, so nobody waits behind someone's album.
    max_queued_per_user: int = Field(10, ge=1, le=100_000)
    # Longest a picture may take, download and wait included, in seconds.
    request_timeout_s: float = Field(120.0, gt=0, le=3600)
    # Picture bytes downloaded and not yet decoded, in all: past it, downloads wait their turn.
    # A flood of 20 MB files then costs this much memory, not 20 MB times the queue.
    max_download_mb_in_flight: float = Field(256.0, gt=0, le=1_000_000)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_unset(cls, values: Any) -> Any:
        if not isinstance(values, Mapping):
            return values
        cleaned = {}
        for key, value in values.items():
            if isinstance(value, str) and not value.strip():
                if key.lower() in _EMPTY_MEANS_OFF:
                    cleaned[key] = ""
                continue  # empty: the default applies
            cleaned[key] = value
        return cleaned

    @field_validator("translation_backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"should be one of: {', '.join(BACKENDS)}")
        return value

    @field_validator("chat_model_languages")
    @classmethod
    def _language_codes(cls, value: str) -> str:
        parse_codes(value, "CHAT_MODEL_LANGUAGES")
        return value

    @field_validator("translation_models", "question_translation_models")
    @classmethod
    def _well_formed(cls, value: str, info: Any) -> str:
        parse_models(value, info.field_name.upper())
        return value

    # -- what the settings mean, once combined ---------------------------------------------

    @property
    def translators(self) -> dict[str, ModelRef]:
        """English -> language, by language code, in the order given."""
        models = parse_models(self.translation_models, "TRANSLATION_MODELS")
        if self.translation_model:
            models["es"] = ModelRef(self.translation_model)
        return models

    @property
    def question_translators(self) -> dict[str, ModelRef]:
        """Language -> English, for questions asked in other languages than English."""
        models = parse_models(self.question_translation_models, "QUESTION_TRANSLATION_MODELS")
        if self.question_translation_model is not None:
            if self.question_translation_model:
                models["es"] = ModelRef(self.question_translation_model)
            else:
                models.pop("es", None)
        return models

    @property
    def chat_languages(self) -> tuple[str, ...]:
        """The languages a chat model writes in itself (CHAT_MODEL_LANGUAGES), in order."""
        return parse_codes(self.chat_model_languages, "CHAT_MODEL_LANGUAGES")

    @property
    def int8_cache(self) -> Path | None:
        """QUANTIZED_CACHE_DIR as a folder; ``None`` when it is ``off``."""
        if self.quantized_cache_dir.strip().lower() == "off":
            return None
        return Path(self.quantized_cache_dir).expanduser()

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language a description can be given in: English, then the translations and
        the languages a chat model writes in itself."""
        return ("en", *dict.fromkeys((*self.translators, *self.chat_languages)))

    @property
    def detected_languages(self) -> tuple[str, ...]:
        """What a question's language is told among: every language configured either way (a
        chat model's own too), so that a question in a language without its model can be told
        apart, and refused."""
        return tuple(dict.fromkeys((*self.languages, *self.question_translators)))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, env_file: str | Path | None = None
    ) -> EngineSettings:
        """Read the settings from ``environ`` (default: the process environment and ``env_file``)."""
        try:
            if environ is None:
                return cls(_env_file=env_file)  # type: ignore[call-arg]
            known = {name.upper() for name in cls.model_fields}
            values = {k.lower(): v for k, v in environ.items() if k.upper() in known}
            return cls.model_validate(values)
        except ValidationError as exc:
            raise settings_error(exc) from exc

    def batch_size_for(self, device_type: str) -> int:
        """MAX_BATCH_SIZE, or when unset what suits the device. Measured at full size on a 2-core
        CPU (docs/benchmarks.md): float32 still gains from 4 pictures a pass to 8 (7.1 s a
        picture against 9.9 s); int8 gains nothing past 4 (1.7 s at both), where a bigger batch
        only makes its first picture wait longer. A GPU gains up to 16 and more."""
        if self.max_batch_size is not None:
            return self.max_batch_size
        if device_type != "cpu":
            return 16
        return 4 if self.quantize == "int8" else 8

    def with_overrides(self, **overrides: Any) -> EngineSettings:
        """A copy with the given fields replaced, validated; ``None`` values are ignored."""
        values = self.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return type(self).model_validate(values)
        except ValidationError as exc:
            raise settings_error(exc) from exc


def _user_cache(name: str) -> str:
    """A folder of ours in the user's cache: $XDG_CACHE_HOME/describe-bot/<name>, or ~/.cache/..."""
    return str(Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "describe-bot" / name)


def settings_error(exc: ValidationError) -> SettingsError:
    """Turn pydantic's report into one line that names the environment variable."""
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        message = error["msg"].removeprefix("Value error, ")
        if message.startswith(f"{name}:"):  # our own validators name the setting already
            problems.append(message)
        else:
            problems.append(f"{name}={error.get('input')!r}: {message}")
    return SettingsError("Invalid setting " + "; ".join(problems))
