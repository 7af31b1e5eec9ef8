"""One batch of one task kind through a backend, with failures kept to the pictures they
belong to: the executor's model thread and the Ray replicas both run batches this way.

A batch that fails (CUDA out of memory, say), or whose backend returns the wrong number of
results, is split in halves and each half tried again, down to one picture, so one bad request
never fails its neighbours. What comes back is one outcome per picture: its result, or the
exception that is its alone (:class:`InferenceError` when the models failed on it by itself).
Out of memory is reported (``on_out_of_memory``) so the caller can lower its batch ceiling.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import InferenceError

__all__ = ["Run", "free_cuda_cache", "is_out_of_memory", "run_isolated"]

log = logging.getLogger(__name__)

Run = Callable[[str, list[Any], list[Any]], list[Any]]


def run_isolated(
    run: Run,
    kind: str,
    pictures: Sequence[Any],
    tasks: Sequence[Any],
    *,
    on_batch: Callable[[int, float], None] = lambda size, seconds: None,
    on_out_of_memory: Callable[[int], None] = lambda size: None,
) -> list[Any]:
    """``run(kind, pictures, tasks)``, split and retried where it fails: N outcomes, in order.
    ``on_batch(size, seconds)`` hears of every (part of a) batch that went through."""
    started = time.monotonic()
    try:
        results = run(kind, list(pictures), list(tasks))
        # The batch contract, checked inside the try: a backend that breaks it fails this
        # batch (split and retried), not the thread that runs it.
        if len(results) != len(pictures):
            raise RuntimeError(f"a batch of {len(pictures)} gave {len(results)} results")
    except Exception as exc:
        if is_out_of_memory(exc):
            on_out_of_memory(len(pictures))
            free_cuda_cache()
        if len(pictures) == 1:
            log.error("A picture's %s failed", kind, exc_info=exc)
            error = InferenceError("Something went wrong while describing this picture.")
            error.__cause__ = exc
            return [error]
        # Retry the halves: the failure may belong to one picture, or to the batch's size.
        middle = len(pictures) // 2
        halves = ((pictures[:middle], tasks[:middle]), (pictures[middle:], tasks[middle:]))
        return [
            outcome
            for part, its_tasks in halves
            for outcome in run_isolated(
                run, kind, part, its_tasks, on_batch=on_batch, on_out_of_memory=on_out_of_memory
            )
        ]
    on_batch(len(pictures), time.monotonic() - started)
    return results


def is_out_of_memory(exc: BaseException) -> bool:
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def free_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
