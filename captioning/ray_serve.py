"""The engine as a Ray Serve application, for one bot and many GPUs.

    serve run --name captioning captioning.ray_serve:app

``app`` is built when this module is imported, from the environment of the process that
imports it (``serve run``'s): the engine's settings (``CAPTION_MODEL``, ``DEVICE``,
``MAX_BATCH_SIZE``, ...) travel to every replica as the deployment's init argument, so the
replicas need no environment of their own. ``build_app`` takes overrides as application
arguments: ``serve run captioning.ray_serve:build_app caption_model=/models/blip2``.

Replicas and resources, from the environment too:

=====================  =======  ===============================================================
``RAY_NUM_GPUS``       ``0``    GPUs per replica: 1 gives one replica per GPU; 0 on CPUs
``RAY_MIN_REPLICAS``   ``1``    autoscaling floor
``RAY_MAX_REPLICAS``   ``1``    autoscaling ceiling: the number of GPUs in the cluster, say
=====================  =======  ===============================================================

Autoscaling aims at ``MAX_BATCH_SIZE`` requests in flight per replica: a replica is added when
the ones there have more than a full batch each waiting, and removed when they idle.
Pictures arrive as bytes and are decoded on the replica.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ray import serve
from ray.serve import Application

from .errors import InvalidImage
from .questions import Question
from .ray_backend import APP_NAME
from .settings import EngineSettings

__all__ = ["APP_NAME", "Captioner", "app", "build_app"]


@serve.deployment(name="Captioner")
class Captioner:
    """One replica: the engine on its device, fed by Serve's batching."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from PIL import Image

        from .engine import Engine

        self.settings = EngineSettings.model_validate(settings)
        self.engine = Engine.load(self.settings)
        # One thread owns the models, as in the local executor; Serve's event loop stays free.
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="models")
        self.describe.set_max_batch_size(self.settings.max_batch_size)
        self.describe.set_batch_wait_timeout_s(self.settings.max_batch_wait_ms / 1000)
        self.describe_detailed.set_max_batch_size(self.settings.max_batch_size)
        self.answer.set_max_batch_size(self.settings.max_batch_size)
        self.answer.set_batch_wait_timeout_s(self.settings.max_batch_wait_ms / 1000)
        grey = Image.new("RGB", (self.engine.input_size,) * 2, (128, 128, 128))
        self._model_thread.submit(self.engine.describe, [grey, grey]).result()  # warm-up
        self._model_thread.submit(self.engine.answer, [grey], [Question("¿de qué color es?", "es")]).result()

    def input_size(self) -> int:
        return self.engine.input_size

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def describe(self, pictures: list[bytes]) -> list[dict[str, str]]:
        """N pictures' bytes -> N results: {english, spanish}, or {error, reason} for bad bytes."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, self._describe, pictures)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def describe_detailed(self, pictures: list[bytes]) -> list[dict[str, str]]:
        """The same, with beam search and a longer limit ("describe again")."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, self._describe, pictures, True)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def answer(self, asked: list[tuple[bytes, str, str]]) -> list[dict[str, str]]:
        """N (picture bytes, question, its language "en"|"es") -> N answers, as ``describe``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, self._answer, asked)

    def _describe(self, pictures: list[bytes], detailed: bool = False) -> list[dict[str, str]]:
        return self._each(pictures, lambda prepared, _: self.engine.describe(prepared, detailed=detailed))

    def _answer(self, asked: list[tuple[bytes, str, str]]) -> list[dict[str, str]]:
        questions = [Question(text, "es" if language == "es" else "en") for _, text, language in asked]
        return self._each(
            [picture for picture, _, _ in asked],
            lambda prepared, good: self.engine.answer(prepared, [questions[i] for i in good]),
        )

    def _each(self, pictures: list[bytes], generate: Any) -> list[dict[str, str]]:
        """Decode each picture, run ``generate`` on the good ones, and report the bad ones."""
        results: list[dict[str, str]] = [{} for _ in pictures]
        good, prepared = [], []
        for i, picture in enumerate(pictures):
            try:
                prepared.append(self.engine.prepare(picture))
                good.append(i)
            except InvalidImage as exc:  # this picture's own problem: not its neighbours'
                results[i] = {"error": str(exc), "reason": exc.reason}
        if not good:
            return results
        for i, description in zip(good, generate(prepared, good), strict=True):
            results[i] = {"english": description.english, "spanish": description.spanish}
        return results


def build_app(args: dict[str, str] | None = None) -> Application:
    """The application, from the environment plus ``args`` (engine setting overrides)."""
    settings = EngineSettings.from_env().with_overrides(**(args or {}))
    gpus = float(os.environ.get("RAY_NUM_GPUS", "0"))
    return Captioner.options(
        ray_actor_options={"num_gpus": gpus, "num_cpus": 1},
        max_ongoing_requests=settings.max_batch_size * 4,
        autoscaling_config={
            "min_replicas": int(os.environ.get("RAY_MIN_REPLICAS", "1")),
            "max_replicas": int(os.environ.get("RAY_MAX_REPLICAS", "1")),
            "target_ongoing_requests": settings.max_batch_size,
        },
    ).bind(settings.model_dump())


app = build_app()
