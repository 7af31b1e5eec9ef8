"""A photo library for the CLI's tests, and ``python -m captioning`` as a process whose peak
memory is measured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from tests.support import pictures
from tests.support.tiny_models import COLORS, caption_for


def photo_library(folder: Path, count: int) -> dict[str, str]:
    """``count`` small JPEGs of the tiny models' colors in ``folder``: {file name: caption}."""
    folder.mkdir(parents=True, exist_ok=True)
    colors = list(COLORS)
    names = {}
    for i in range(count):
        color = colors[i % len(colors)]
        name = f"{i:04d}-{color}.jpg"
        (folder / name).write_bytes(pictures.jpeg(color))
        names[name] = caption_for(color)
    return names


def tall_strips(folder: Path, count: int) -> None:
    """``count`` PNGs 64 pixels wide and 8,000 high: a few hundred bytes on disk, 1.5 MB each
    decoded, and never reduced (the tiny models look at 64 pixels): a run that held the whole
    folder decoded would grow by 1.5 MB a picture."""
    folder.mkdir(parents=True, exist_ok=True)
    colors = list(COLORS)
    for i in range(count):
        strip = Image.new("RGB", (64, 8000), COLORS[colors[i % len(colors)]][0])
        (folder / f"{i:04d}.png").write_bytes(pictures.encode(strip, "PNG"))


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "captioning", *args]


def peak_memory_kib(*args: str, env: dict[str, str], stderr: Path) -> tuple[int, int]:
    """Run ``python -m captioning ARGS`` to the end, stdout thrown away; its exit status and
    its own peak resident memory (KiB), from the kernel's account of that one process."""
    with open(stderr, "w") as errors:
        process = subprocess.Popen(
            cli_command(*args), stdout=subprocess.DEVNULL, stderr=errors, env={**os.environ, **env}
        )
        _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait again
    return process.returncode, usage.ru_maxrss
