"""Bytes in, an RGB picture out, or :class:`InvalidImage` with a sentence a person can read.

Pictures arrive from strangers, so this module assumes the worst:

* the format is sniffed from the bytes by Pillow; a file name or a claimed mime type is never
  consulted, and only the decoders in :data:`ACCEPTED_FORMATS` are ever run;
* the size in the header is checked against :data:`MAX_PIXELS` and :data:`MAX_SIDE` before a
  single pixel is decoded, and Pillow's own decompression-bomb warning is an error;
* truncated data is an error, never a half-grey picture;
* no more pixels are decoded than the model needs: a JPEG decodes at the smallest scale
  (1/2 .. 1/8) that keeps its short side at or above the model's input, other formats are
  reduced as soon as they are decoded, and full-size decodes in flight share a pixel budget
  (:data:`DECODE_BUDGET_PIXELS`), so a burst of 50-megapixel PNGs waits its turn instead of
  taking gigabytes.

What is accepted is normalised: the first frame of an animation, EXIF orientation applied,
transparency composited onto white, 16-bit samples scaled to 8 bits, any mode made RGB.
HEIC (iPhones send it when a picture goes as a file) is read with pillow-heif, AVIF with
Pillow's own decoder, under the same limits.
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidImage

__all__ = [
    "ACCEPTED_FORMATS",
    "DECODE_BUDGET_PIXELS",
    "MAX_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "load_image",
]

try:  # HEIC/HEIF: pillow-heif registers its decoder with Pillow
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF = True
except ImportError:  # pragma: no cover - a dependency; without it HEIC is refused by name
    HEIF = False

# Pillow decoders we run. JPEG's also opens MPO, what many phone cameras write.
ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF") + (("HEIF",) if HEIF else ())
# Telegram lets bots download 20 MB; a CLI user gets a little more room.
MAX_BYTES = 50 * 1024 * 1024
# 50 megapixels covers a 48 MP phone photo; a decoded RGBA picture of this size is 200 MB.
MAX_PIXELS = 50_000_000
MAX_SIDE = 20_000

SUPPORTED = "JPEG, PNG, WebP, HEIC, AVIF, GIF, BMP or TIFF"
# Pixels decoded at full size at once, over every thread: two of the largest pictures.
DECODE_BUDGET_PIXELS = 2 * MAX_PIXELS

# Pillow warns, and only warns, between MAX_IMAGE_PIXELS and twice that; we refuse instead.
# The filter is process-wide on purpose: a per-call catch_warnings is not thread-safe, and
# pictures are decoded on worker threads.
warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def load_image(data: bytes | bytearray, *, min_side: int | None = None) -> Image.Image:
    """Decode ``data`` into an RGB picture, or raise :class:`InvalidImage`.

    ``min_side``, when given, lets JPEG decode at a reduced scale (1/2 .. 1/8) as long as both
    sides stay at least that long: a model that looks at 224 pixels doesn't need 48 MP.
    """
    if not data:
        raise InvalidImage("The file is empty.", "empty")
    if len(data) > MAX_BYTES:
        raise InvalidImage(
            f"The file is too large: the limit is {MAX_BYTES // (1024 * 1024)} MB.", "too_large"
        )
    _refuse_known_non_pictures(data)
    try:
        image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidImage(_too_big_message(), "too_big") from exc
    except UnidentifiedImageError:
        raise _not_a_picture() from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InvalidImage("The picture is damaged and can't be read.", "damaged") from exc
    with image:
        _check_dimensions(image.size)
        try:
            if image.format in ("JPEG", "MPO") and min_side:
                image.draft("RGB", (min_side, min_side))
            image.seek(0)  # the first frame of a GIF, WebP or MPO animation
            width, height = image.size
            with _BUDGET.pixels(width * height):
                image.load()
                picture: Image.Image = _reduce(image, min_side) if min_side else image
            return _normalise(picture)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InvalidImage(_too_big_message(), "too_big") from exc
        except (OSError, ValueError, SyntaxError, EOFError, IndexError, MemoryError) as exc:
            # Pillow reports truncation as OSError("image file is truncated ...").
            raise InvalidImage(
                "The picture is incomplete or damaged and can't be read; try sending it again.",
                "damaged",
            ) from exc


def _refuse_known_non_pictures(data: bytes | bytearray) -> None:
    """Name the common look-alikes, so the person knows what to send instead."""
    head = data[:1024].lstrip()
    lowered = head.lower()
    if head.startswith(b"%PDF"):
        raise InvalidImage(f"This is a PDF document, not a picture. Use a {SUPPORTED} picture.", "pdf")
    if lowered.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in data[:4096].lower():
        raise InvalidImage(f"SVG drawings aren't supported. Use the picture as {SUPPORTED} instead.", "svg")
    heif_brands = (b"heic", b"heix", b"mif1", b"msf1", b"heif")
    if not HEIF and data[4:8] == b"ftyp" and data[8:12] in heif_brands:
        raise InvalidImage(
            f"HEIC pictures can't be read here (pillow-heif is missing). Use {SUPPORTED}.", "heic"
        )


def _not_a_picture() -> InvalidImage:
    return InvalidImage(f"This file isn't a picture I can read. Use a {SUPPORTED} picture.")


def _too_big_message() -> str:
    return (
        f"The picture is too big: the limit is {MAX_PIXELS // 1_000_000} megapixels "
        f"and {MAX_SIDE} pixels a side."
    )


def _check_dimensions(size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise InvalidImage("The picture has no pixels.", "damaged")
    # Pillow's bomb limit counts too, should someone lower it below ours: where Pillow would
    # only warn, we refuse. (This check, unlike the warnings filter, no catch_warnings undoes.)
    limit = min(MAX_PIXELS, Image.MAX_IMAGE_PIXELS or MAX_PIXELS)
    if width > MAX_SIDE or height > MAX_SIDE or width * height > limit:
        raise InvalidImage(_too_big_message(), "too_big")


def _reduce(image: Image.Image, min_side: int) -> Image.Image:
    """Shrink by a whole factor while the short side stays at least twice ``min_side``: the
    model resizes to ``min_side`` anyway, and the full-size copy is freed at once."""
    factor = min(image.size) // (2 * min_side)
    if factor < 2 or image.mode not in ("RGB", "RGBA", "L", "LA", "CMYK", "I", "F"):
        return image
    return image.reduce(factor)


class _PixelBudget:
    """Full-size pixels being decoded, over every decode thread. One picture larger than the
    budget still goes, alone."""

    def __init__(self, limit: int) -> None:
        self.limit, self.used = limit, 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def pixels(self, count: int) -> Iterator[None]:
        with self._changed:
            while self.used and self.used + count > self.limit:
                self._changed.wait()
            self.used += count
        try:
            yield
        finally:
            with self._changed:
                self.used -= count
                self._changed.notify_all()


_BUDGET = _PixelBudget(DECODE_BUDGET_PIXELS)


def _normalise(image: Image.Image) -> Image.Image:
    """Any accepted picture -> an upright RGB picture, transparency on white."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit samples: Pillow's convert() would clip them to 255 (a white picture).
        samples = np.asarray(image, dtype=np.uint32)
        image = Image.fromarray((samples >> 8).clip(0, 255).astype(np.uint8))
    elif image.mode == "F":
        samples = np.nan_to_num(np.asarray(image, dtype=np.float32))
        peak = float(samples.max()) or 1.0
        scale = 255.0 if peak <= 1.0 else 255.0 / peak
        image = Image.fromarray((samples * scale).clip(0, 255).astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")
