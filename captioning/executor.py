"""The async face of the engine: awaitable descriptions, model work off the event loop.

One thread owns the models (CUDA work from one thread keeps the device's state simple and
its kernels in order); pictures are decoded on a separate pool of CPU threads, so the
model thread never waits on JPEG decoding. Importing this module does not import torch:
the engine loads in :meth:`Executor.start`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from .description import Description
from .settings import EngineSettings

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Executor"]

log = logging.getLogger(__name__)


class Executor:
    """Describes pictures given as bytes; ``await start()`` first, ``await stop()`` last."""

    def __init__(
        self,
        settings: EngineSettings | None = None,
        *,
        engine_factory: Callable[[], Engine] | None = None,
        decode_threads: int | None = None,
    ) -> None:
        self._settings = settings
        self._engine_factory = engine_factory
        self._engine: Engine | None = None
        self._model_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="models")
        self._decoders = ThreadPoolExecutor(
            max_workers=decode_threads or min(4, os.cpu_count() or 1), thread_name_prefix="decode"
        )

    @property
    def input_size(self) -> int:
        """The caption model's input resolution, in pixels a side."""
        return self._require_engine().input_size

    async def start(self) -> None:
        """Load the models on the model thread (they stay there)."""
        loop = asyncio.get_running_loop()
        self._engine = await loop.run_in_executor(self._model_thread, self._load)

    async def describe(self, picture: bytes) -> Description:
        """Decode and describe one picture; raises ``InvalidImage`` for bad bytes."""
        engine = self._require_engine()
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(self._decoders, engine.prepare, picture)
        [description] = await loop.run_in_executor(self._model_thread, engine.describe, [prepared])
        return description

    async def stop(self) -> None:
        """Let work in flight finish, then release the threads."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._decoders.shutdown(wait=True)
        self._model_thread.shutdown(wait=True)

    def _load(self) -> Engine:
        if self._engine_factory is not None:
            return self._engine_factory()
        from .engine import Engine

        return Engine.load(self._settings)

    def _require_engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("Executor.start() has not finished")
        return self._engine
