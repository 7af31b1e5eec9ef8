"""ExifTool, kept running for the whole run (``-stay_open``): one command per picture.

ExifTool (Phil Harvey's, Debian's ``libimage-exiftool-perl``, Homebrew's ``exiftool``) is the
reference reader and writer of IPTC photo metadata, and it writes XMP into JPEG, PNG, WebP,
TIFF, HEIC, AVIF and GIF without touching the pixels. It runs as a program of its own, so a
file that trips it can't take the CLI down with it. Started once, it answers a command in a few
milliseconds instead of the 150 to 250 ms a fresh start costs.

The protocol: arguments one per line on stdin, then ``-executeN``; ExifTool answers on stdout
and ends with ``{readyN}``. ``-echo4 {readyN}`` puts the same mark on stderr after the
command, so both streams are read to the end of this command and no further. An argument
can't hold a line break: values go with ``-E`` (HTML entities, ``&#10;`` for a line break).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from ..errors import CaptioningError, SettingsError

__all__ = ["ExifTool", "ExifToolError", "escaped"]

# The IPTC tags this CLI writes: ExifTool versions without them (before the 2021 standard)
# would answer "Tag ... is not defined" for every file.
NEEDED_TAGS = ("AltTextAccessibility", "ExtDescrAccessibility")
INSTALL = "Debian/Ubuntu: apt install libimage-exiftool-perl; macOS: brew install exiftool"


class ExifToolError(CaptioningError):
    """ExifTool stopped, or can't be used; the message says what to do."""


class ExifTool:
    """One ``exiftool -stay_open`` process; :meth:`run` one command, :meth:`close` at the end."""

    def __init__(self, program: str = "exiftool") -> None:
        path = shutil.which(program)
        if path is None:
            raise SettingsError(f"--write-alt-text needs ExifTool, which isn't installed ({INSTALL}).")
        # A session of its own: Ctrl-C on a terminal goes to the whole foreground group, and
        # ExifTool must finish the picture in hand while the CLI stops after its batch.
        self._process = subprocess.Popen(
            [path, "-stay_open", "True", "-@", "-", "-common_args", "-charset", "filename=utf8"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        self._commands = 0

    def check(self) -> None:
        """Raise SettingsError unless this ExifTool can write IPTC Alt Text: it writes both tags
        into a new XMP file (listing its tags would take ten times as long)."""
        with tempfile.TemporaryDirectory() as folder:
            sidecar = Path(folder, "check.xmp")
            self.run(*(f"-XMP-iptcCore:{tag}=x" for tag in NEEDED_TAGS), "-o", str(sidecar))
            if sidecar.exists():
                return
        self.close()
        raise SettingsError(
            f"--write-alt-text: this ExifTool predates IPTC Alt Text (2021); install a newer one ({INSTALL})."
        )

    def run(self, *args: str) -> tuple[str, str]:
        """One command; its stdout and stderr."""
        if any("\n" in arg for arg in args):
            raise ValueError("an ExifTool argument can't hold a line break; escape the value")
        self._commands += 1
        mark = f"{{ready{self._commands}}}"
        command = [*args, "-echo4", mark, f"-execute{self._commands}"]
        stdin, stdout, stderr = self._process.stdin, self._process.stdout, self._process.stderr
        assert stdin is not None and stdout is not None and stderr is not None
        try:
            stdin.write(("\n".join(command) + "\n").encode())
            stdin.flush()
        except OSError as exc:
            raise ExifToolError(f"ExifTool stopped ({exc.strerror or exc}).") from exc
        return _until(stdout, mark), _until(stderr, mark)

    def close(self) -> None:
        """Ask ExifTool to finish, and wait for it (killed after a few seconds)."""
        if self._process.poll() is not None:
            return
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(b"-stay_open\nFalse\n")
            self._process.stdin.close()
            self._process.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self._process.kill()
            self._process.wait()


def _until(stream: IO[bytes], mark: str) -> str:
    """The lines of ``stream`` up to ``mark`` (a line of its own)."""
    lines: list[str] = []
    while True:
        line = stream.readline()
        if not line:
            raise ExifToolError("ExifTool stopped unexpectedly.")
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        if text == mark:
            return "\n".join(lines)
        lines.append(text)


def escaped(value: str) -> str:
    """``value`` for an argument with ``-E``: HTML entities, line breaks as ``&#10;``."""
    return html.escape(value, quote=False).replace("\r\n", "\n").replace("\n", "&#10;")
