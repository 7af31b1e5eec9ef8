"""Descriptions into the pictures themselves: IPTC Alt Text (Accessibility), in XMP.

The IPTC Photo Metadata Standard (2021.1) names two fields for people who can't see a picture,
both language alternatives (one entry per language; ``x-default`` first, English here):

    Iptc4xmpCore:AltTextAccessibility    Alt Text: about 125 characters, no more than 250
    Iptc4xmpCore:ExtDescrAccessibility   Extended Description: whatever doesn't fit in that

A caption longer than 250 characters is cut to the whole sentences that fit (or to whole
words, with an ellipsis), and then the whole text goes into Extended Description, unless
``--detailed`` puts the detailed description there.

ExifTool writes them (:mod:`.exiftool`): the pixels are never decoded or encoded again. The
picture is written as a copy beside it, and the copy then replaces it in one rename, with the
file's permissions and (unless asked otherwise) its modification time: a run stopped at any
moment leaves each picture either as it was or with its alt text, never half-written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..tasks import Translated
from .exiftool import ExifTool, escaped

__all__ = ["MAX_CHARS", "WRITABLE", "AltTextWriter", "Written", "fit", "picture_format"]

MAX_CHARS = 250
ALT = "XMP-iptcCore:AltTextAccessibility"
EXTENDED = "XMP-iptcCore:ExtDescrAccessibility"
# The formats ExifTool writes XMP into, by name -> the extension it expects for them.
WRITABLE = {"JPEG": ".jpg", "PNG": ".png", "WebP": ".webp", "TIFF": ".tif", "HEIC": ".heic"}
WRITABLE |= {"AVIF": ".avif", "GIF": ".gif"}
_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


@dataclass(frozen=True)
class Written:
    """What became of one picture: ``written``, ``kept`` (it had alt text) or ``refused``."""

    status: str
    reason: str = ""  # refused: one sentence
    sha256: str = ""  # written: the file's new content hash
    code: str = ""  # refused: a few words for the summary ("BMP file", "read-only")


def picture_format(data: bytes) -> str | None:
    """The picture's format from its first bytes: a key of :data:`WRITABLE`, "BMP", or None."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "TIFF"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        return "AVIF" if brand in (b"avif", b"avis") else "HEIC" if brand in _HEIF_BRANDS else None
    return "BMP" if data[:2] == b"BM" else None


def fit(text: str, limit: int = MAX_CHARS) -> str:
    """``text`` on one line, within ``limit`` characters: the whole sentences that fit, or else
    the whole words that fit and an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    ends = [i + 1 for i, c in enumerate(text[:limit]) if c in ".!?" and text[i + 1 : i + 2] in (" ", "")]
    if ends:
        return text[: ends[-1]]
    words = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
    return words.rstrip(",;:") + "…"


class AltTextWriter:
    """Writes Alt Text (and Extended Description) into picture files, one at a time."""

    def __init__(self, *, overwrite: bool = False, keep_mtime: bool = True) -> None:
        self.overwrite, self.keep_mtime = overwrite, keep_mtime
        self.exiftool = ExifTool()
        self.exiftool.check()

    def close(self) -> None:
        self.exiftool.close()

    def write(
        self, path: Path, data: bytes, read: os.stat_result, text: Translated, detailed: Translated | None
    ) -> Written:
        """Write ``text`` (and ``detailed``) into the file at ``path``, whose content was
        ``data`` when it was ``read``; or say why not."""
        if not text.english.strip():
            return _refused("The description is empty.", "empty description")
        kind = picture_format(data)
        if kind not in WRITABLE:
            files = f"{kind} files" if kind else "Files of this kind"
            return _refused(
                f"{files} can't carry alt text; {_writable_list()} can.", f"{kind or 'other'} file"
            )
        target = Path(os.path.realpath(path))
        if not read.st_mode & 0o222 or not os.access(target, os.W_OK):  # root too: it was marked so
            return _refused("The file is read-only.", "read-only")
        copy = target.with_name(f".{target.name}.alt-text{WRITABLE[kind]}")
        try:
            copy.write_bytes(data)
            return self._write_copy(copy, target, read, text, detailed)
        except PermissionError:
            return _refused("The folder can't be written to: permission denied.", "folder read-only")
        except OSError as exc:
            return _refused(f"The file can't be written: {exc.strerror or exc}.", "not writable")
        finally:
            with contextlib.suppress(FileNotFoundError):
                copy.unlink()

    def _write_copy(
        self, copy: Path, target: Path, read: os.stat_result, text: Translated, detailed: Translated | None
    ) -> Written:
        tags = self._tags(copy)
        if isinstance(tags, Written):
            return tags
        had = {field for field in (ALT, EXTENDED) if _has(tags, field)}
        if ALT in had and not self.overwrite:
            return Written("kept")
        alt, extended = _entries(text, detailed)
        if EXTENDED in had and not self.overwrite:
            extended = {}  # someone's own Extended Description stays
        args = [f"-{field}=" for field in (ALT, EXTENDED) if field in had and (field == ALT or extended)]
        args += [f"-{ALT}{code}={escaped(value)}" for code, value in alt.items()]
        args += [f"-{EXTENDED}{code}={escaped(value)}" for code, value in extended.items()]
        out, errors = self.exiftool.run("-overwrite_original", "-E", *args, str(copy))
        # What counts is what a reader finds: ExifTool can leave a file "unchanged" with only a
        # warning (a compressed XMP packet it can't inflate, say).
        after = self._tags(copy)
        name = ALT.partition(":")[2]
        if isinstance(after, Written) or any(str(after.get(name + c)) != v for c, v in alt.items()):
            return _refused(_exiftool_sentence(errors or out), "damaged metadata")
        return self._replace(copy, target, read)

    def _replace(self, copy: Path, target: Path, read: os.stat_result) -> Written:
        """``copy`` in the place of ``target``, in one rename, with its permissions and times."""
        os.chmod(copy, read.st_mode & 0o7777)
        with contextlib.suppress(PermissionError):  # only root may give a file to someone else
            os.chown(copy, read.st_uid, read.st_gid)
        if self.keep_mtime:
            os.utime(copy, ns=(read.st_atime_ns, read.st_mtime_ns))
        content = copy.read_bytes()
        with open(copy, "rb") as handle:
            os.fsync(handle.fileno())
        if _changed(target, read):
            return _refused("The file changed while it was being described; run again for it.", "changed")
        os.replace(copy, target)
        return Written("written", sha256=hashlib.sha256(content).hexdigest())

    def _tags(self, copy: Path) -> dict[str, Any] | Written:
        """The picture's IPTC Core tags, as ExifTool names them ("AltTextAccessibility-es"), or
        why they can't be read."""
        out, errors = self.exiftool.run("-j", "-XMP-iptcCore:all", str(copy))
        try:
            [tags] = json.loads(out)
        except ValueError:
            return _refused(_exiftool_sentence(errors or "no answer"), "damaged metadata")
        if "Error" in tags:
            return _refused(_exiftool_sentence(str(tags["Error"])), "damaged metadata")
        return dict(tags)


def _has(tags: dict[str, Any], field: str) -> bool:
    """Whether ``field`` has text in any language."""
    name = field.partition(":")[2]
    return any(str(v).strip() for k, v in tags.items() if k == name or k.startswith(name + "-"))


def _entries(text: Translated, detailed: Translated | None) -> tuple[dict[str, str], dict[str, str]]:
    """Alt Text and Extended Description, by ExifTool's language suffix ("" for x-default,
    English; "-es" for Spanish): Extended Description is the detailed description, or else the
    whole text where Alt Text had to be cut."""
    whole = {"": text.english, **{f"-{code}": t for code, t in text.translations.items()}}
    whole = {code: t.strip() for code, t in whole.items() if t.strip()}
    alt = {code: fit(t) for code, t in whole.items()}
    if detailed is not None:
        extended = {"": detailed.english, **{f"-{code}": t for code, t in detailed.translations.items()}}
        return alt, {code: t.strip() for code, t in extended.items() if t.strip()}
    cut = any(alt[code] != " ".join(t.split()) for code, t in whole.items())
    return alt, (whole if cut else {})


def _changed(target: Path, read: os.stat_result) -> bool:
    now = target.stat()
    return (now.st_ino, now.st_size, now.st_mtime_ns) != (read.st_ino, read.st_size, read.st_mtime_ns)


def _exiftool_sentence(errors: str) -> str:
    """ExifTool's first error (or else warning), as one sentence, without the file name."""
    lines = [line.strip() for line in errors.splitlines() if line.strip()] or [errors]
    line = next((line for line in lines if line.startswith("Error")), lines[0])
    for prefix in ("Error: ", "Warning: ", "[minor] "):
        line = line.removeprefix(prefix)
    line = line.rsplit(" - ", 1)[0].rstrip(".")
    return f"Its metadata can't be written (ExifTool: {line})."


def _refused(reason: str, code: str) -> Written:
    return Written("refused", reason, code=code)


def _writable_list() -> str:
    names = list(WRITABLE)
    return ", ".join(names[:-1]) + " and " + names[-1]
