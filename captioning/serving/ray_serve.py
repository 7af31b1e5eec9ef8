"""The engine as a Ray Serve application, for one bot and many GPUs.

    serve run --name captioning captioning.serving.ray_serve:app

``app`` is built when this module is imported, from the environment of the process that
imports it (``serve run``'s): the engine's settings (``CAPTION_MODEL``, ``DEVICE``,
``MAX_BATCH_SIZE``, ...) travel to every replica as the deployment's init argument, so the
replicas need no environment of their own. ``build_app`` takes overrides as application
arguments: ``serve run captioning.serving.ray_serve:build_app caption_model=/models/blip2``.

Replicas and resources, from the environment too:

=====================  =======  ===============================================================
``RAY_NUM_GPUS``       ``0``    GPUs per replica: 1 gives one replica per GPU; 0 on CPUs
``RAY_MIN_REPLICAS``   ``1``    autoscaling floor
``RAY_MAX_REPLICAS``   ``1``    autoscaling ceiling: the number of GPUs in the cluster, say
=====================  =======  ===============================================================

Autoscaling aims at ``MAX_BATCH_SIZE`` requests in flight per replica: a replica is added when
the ones there have more than a full batch each waiting, and removed when they idle.
Every task goes through one batched method, ``run``: pictures arrive as bytes with their task,
are decoded on the replica, and each kind in the batch is one ``Engine.run``. A batch the models
fail on is split and retried on the replica, as the local executor does it
(:func:`~captioning.serving.batches.run_isolated`): one request's failure is that request's.
"""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ray import serve
from ray.serve import Application

from ..errors import InferenceError, InvalidImage
from ..settings import EngineSettings
from .batches import run_isolated
from .ray_backend import APP_NAME, FAILED

__all__ = ["APP_NAME", "Captioner", "app", "build_app"]

# Serve writes this logger to each replica's log file (logs/serve/replica_*.log).
log = logging.getLogger("ray.serve")


@serve.deployment(name="Captioner")
class Captioner:
    """One replica: the engine on its device, fed by Serve's batching."""

    def __init__(self, settings: dict[str, Any]) -> None:
        from ..engine import Engine

        self.settings = EngineSettings.model_validate(settings)
        self.engine = Engine.load(self.settings)
        # One thread owns the models, as in the local executor; Serve's event loop stays free.
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="models")
        batched: Any = self.run  # serve.batch's setters, which its types don't show
        batched.set_max_batch_size(self.engine.batch_size)
        batched.set_batch_wait_timeout_s(self.settings.max_batch_wait_ms / 1000)
        self._model_thread.submit(self.engine.warm_up).result()

    def info(self) -> dict[str, Any]:
        """What the bot needs to know before it sends anything: the engine's capabilities."""
        return self.engine.capabilities.as_dict()

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def run(self, requests: list[tuple[str, bytes, Any]]) -> list[Any]:
        """N (kind, picture bytes, task) -> N results, or {error, reason} for a bad picture."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._model_thread, self._run, requests)

    def _run(self, requests: list[tuple[str, bytes, Any]]) -> list[Any]:
        results: list[Any] = [None] * len(requests)
        kinds: dict[str, list[int]] = {}
        for i, (kind, _, _) in enumerate(requests):
            kinds.setdefault(kind, []).append(i)
        log.info(
            "Running a batch of %d (%s; %d bytes)",
            len(requests),
            ", ".join(f"{kind} {len(indexes)}" for kind, indexes in kinds.items()),
            sum(len(picture or b"") for _, picture, _ in requests),
        )
        for kind, indexes in kinds.items():
            outcomes = self._each(kind, [requests[i][1] for i in indexes], [requests[i][2] for i in indexes])
            for i, outcome in zip(indexes, outcomes, strict=True):
                results[i] = outcome
        return results

    def _each(self, kind: str, pictures: list[bytes], tasks: list[Any]) -> list[Any]:
        """Decode each picture, run the good ones, and report the bad ones in their place.

        The good ones run as the local executor runs them (``run_isolated``): a batch the
        models fail on (one picture or task they can't take, or out of memory) is split in
        halves and retried, so only the request the failure belongs to gets it; Serve itself
        would fail every request of the batch with the one exception."""
        results: list[Any] = [None] * len(pictures)
        good, prepared = [], []
        for i, (picture, task) in enumerate(zip(pictures, tasks, strict=True)):
            try:
                prepared.append(self.engine.prepare(picture, task))
                good.append(i)
            except InvalidImage as exc:  # this picture's own problem: not its neighbours'
                results[i] = {"error": str(exc), "reason": exc.reason}
            except Exception:  # any other decode failure is this picture's alone too
                results[i] = {"error": "The picture can't be read.", "reason": "damaged"}
        if good:
            outcomes = run_isolated(self.engine.run, kind, prepared, [tasks[i] for i in good])
            for i, outcome in zip(good, outcomes, strict=True):
                results[i] = _sent(outcome)
        return results


def _sent(outcome: Any) -> Any:
    """An outcome as it travels back: a failure as {error, reason}, which the client turns
    into the same exception (exceptions themselves don't survive pickling with their cause)."""
    if isinstance(outcome, InferenceError):
        return {"error": str(outcome), "reason": FAILED}
    return outcome


def build_app(args: dict[str, str] | None = None) -> Application:
    """The application, from the environment plus ``args`` (engine setting overrides)."""
    settings = EngineSettings.from_env().with_overrides(**(args or {}))
    gpus = float(os.environ.get("RAY_NUM_GPUS", "0"))
    batch = settings.batch_size_for("cuda" if gpus else "cpu")
    deployment: Any = Captioner  # serve.deployment's class, which its types don't show
    return deployment.options(
        ray_actor_options={"num_gpus": gpus, "num_cpus": 1},
        max_ongoing_requests=batch * 4,
        autoscaling_config={
            "min_replicas": int(os.environ.get("RAY_MIN_REPLICAS", "1")),
            "max_replicas": int(os.environ.get("RAY_MAX_REPLICAS", "1")),
            "target_ongoing_requests": batch,
        },
    ).bind(settings.model_dump())


app = build_app()
