"""The engine's settings: typed, validated, read once from the environment.

Every field is read from the environment variable of the same name in upper case
(``CAPTION_MODEL``, ``DEVICE``, ...). ``.env.example`` lists them all with their defaults.
Command-line flags override them through :meth:`EngineSettings.with_overrides`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import SettingsError

__all__ = ["EngineSettings", "settings_error"]

DtypeSetting = Literal["auto", "float16", "bfloat16", "float32"]


class EngineSettings(BaseSettings):
    """What the engine loads, where it runs, and how it generates."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=False)

    caption_model: str = Field(
        "Salesforce/blip2-opt-2.7b", min_length=1, description="BLIP-2 hub id or local folder"
    )
    translation_model: str = Field(
        "Helsinki-NLP/opus-mt-en-es", min_length=1, description="MarianMT en->es hub id or folder"
    )
    question_translation_model: str = Field(
        "Helsinki-NLP/opus-mt-es-en",
        min_length=1,
        description="MarianMT es->en hub id or folder: Spanish questions, put to BLIP-2 in English",
    )
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
    # "Describe again" under a description: beam search and room for more detail.
    detailed_max_new_tokens: int = Field(60, ge=1, le=512)
    detailed_num_beams: int = Field(3, ge=1, le=16)
    # Answers to questions about a picture: a few words ("red", "two dogs").
    answer_max_new_tokens: int = Field(20, ge=1, le=512)
    answer_num_beams: int = Field(1, ge=1, le=16)
    # Marian is small next to BLIP-2: beam search costs little and reads better.
    translation_max_new_tokens: int = Field(80, ge=1, le=512)
    translation_num_beams: int = Field(4, ge=1, le=16)
    # Pictures in one forward pass; the CLI and the executor cut work into batches this big.
    max_batch_size: int = Field(16, ge=1, le=1024)
    # How long the executor holds a batch open for more pictures after the first arrives.
    max_batch_wait_ms: float = Field(10.0, ge=0, le=10_000)
    # Pictures waiting or in flight, in all; past it, people are asked to try again shortly.
    max_queue: int = Field(256, ge=1, le=1_000_000)
    # Pictures one person may have waiting at once, so nobody waits behind someone's album.
    max_queued_per_user: int = Field(10, ge=1, le=100_000)
    # Longest a picture may wait and be described, in seconds.
    request_timeout_s: float = Field(120.0, gt=0, le=3600)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EngineSettings:
        """Read the settings from ``environ`` (default: the process environment)."""
        try:
            if environ is None:
                return cls()
            known = {name.upper() for name in cls.model_fields}
            values = {k.lower(): v for k, v in environ.items() if k.upper() in known}
            return cls.model_validate(values)
        except ValidationError as exc:
            raise settings_error(exc) from exc

    def with_overrides(self, **overrides: Any) -> EngineSettings:
        """A copy with the given fields replaced, validated; ``None`` values are ignored."""
        values = self.model_dump()
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return type(self).model_validate(values)
        except ValidationError as exc:
            raise settings_error(exc) from exc


def settings_error(exc: ValidationError) -> SettingsError:
    """Turn pydantic's report into one line that names the environment variable."""
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        problems.append(f"{name}={error.get('input')!r}: {error['msg']}")
    return SettingsError("Invalid setting " + "; ".join(problems))
