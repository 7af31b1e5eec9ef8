"""A long run on stderr: a progress bar (tqdm), and a stop that waits for the batch in flight.

The bar shows pictures done of the total, the rate and the time left. It is drawn on a terminal
only (or with ``--progress``), so a pipe or a log file gets lines, never carriage returns; and
always on stderr, so stdout stays the results alone.

Ctrl-C (SIGINT) or SIGTERM during the batches stops after the batch in flight: its pictures are
described, written out and their alt text written, and the run ends with a summary and status
130. A second Ctrl-C stops at once (everything already written stays).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import IO

from tqdm import tqdm

__all__ = ["Progress", "Stopping", "stop_after_batch"]


class Progress:
    """The bar, or nothing; :meth:`say` prints a line above it."""

    def __init__(self, total: int, *, shown: bool | None, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        if shown is None:  # on a terminal, for more than one picture
            shown = total > 1 and self.stream.isatty()
        self._bar = tqdm(
            total=total,
            unit="picture",
            desc="Describing",
            file=self.stream,
            disable=not shown,
            dynamic_ncols=True,
            smoothing=0.1,  # the time left follows the recent rate, not the first batch
        )

    def advance(self, count: int) -> None:
        self._bar.update(count)

    def say(self, line: str) -> None:
        if self._bar.disable:
            print(line, file=self.stream, flush=True)
        else:
            self._bar.write(line, file=self.stream)

    def close(self) -> None:
        self._bar.close()


class Stopping:
    """Whether a stop was asked for; set by the signal handlers of :func:`stop_after_batch`."""

    def __init__(self) -> None:
        self.asked = False


@contextmanager
def stop_after_batch(say: Progress) -> Iterator[Stopping]:
    """While inside: the first SIGINT or SIGTERM asks the batches to stop (``Stopping.asked``),
    a second one raises KeyboardInterrupt."""
    stopping = Stopping()

    def ask(signum: int, frame: FrameType | None) -> None:
        if stopping.asked:
            raise KeyboardInterrupt
        stopping.asked = True
        say.say("Stopping after the pictures in hand (Ctrl-C again to stop now).")

    if threading.current_thread() is not threading.main_thread():  # signals reach that one only
        yield stopping
        return
    previous = {sig: signal.signal(sig, ask) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stopping
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
