"""``python -m captioning IMAGE [IMAGE ...]``: describe pictures in English and other languages.

``--ask "what color is the car?"`` puts that question to every picture instead (in English, or
in a language with a question model: QUESTION_TRANSLATION_MODELS). ``--lang es,fr`` picks
among the configured translations. ``--read`` reads out the text in each picture instead,
and loads the reading model (OCR_MODEL) alone (``--describe --read``: both). Settings come
from the environment and ``.env``, as the bot's do, with flags on top.

For a whole library: ``--jsonl`` gives each picture's line as soon as it is done,
``--skip-done FILE.jsonl`` goes on where an earlier run stopped, ``--write-alt-text`` writes
each description into its picture as IPTC Alt Text, and a progress bar shows on a terminal.
The package :mod:`captioning.cli` does it all.

Exit status: 0 when every file was described (and, with ``--write-alt-text``, its alt text
written or already there), 1 when any was rejected, 2 for a usage error (bad flags or
settings, or models that can't be loaded), 130 when Ctrl-C stopped it, 141 when whatever read
its output went away (``| head``), quietly, as for any Unix tool.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .cli import STOPPED, parse, run

__all__ = ["main"]

PIPE_CLOSED = 128 + 13  # SIGPIPE's status, as a shell reports a tool that met a closed pipe


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parse(argv)
    try:
        return run(args)
    except KeyboardInterrupt:  # before the batches (they stop by themselves): nothing to keep
        print("Stopped.", file=sys.stderr)
        return STOPPED
    except BrokenPipeError:  # the reader of stdout went away: nothing more to say, to anyone
        # What is still buffered for stdout would fail again as Python exits: let it go nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return PIPE_CLOSED


if __name__ == "__main__":
    sys.exit(main())
