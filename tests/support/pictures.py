"""Every kind of file a person might send, made in memory: good pictures and bad input.

File names are chosen to lie about the content: the intake must sniff the bytes.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from tests.support.tiny_models import COLORS


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def solid(color: str, size: int = 80, mode: str = "RGB") -> Image.Image:
    return Image.new("RGB", (size, size), COLORS[color][0]).convert(mode)


def jpeg(color: str = "red", **options) -> bytes:
    return encode(solid(color), "JPEG", quality=95, **options)


def cmyk_jpeg(color: str = "red") -> bytes:
    return encode(solid(color, mode="CMYK"), "JPEG", quality=95)


def palette_png(color: str = "green") -> bytes:
    return encode(solid(color).convert("P", palette=Image.Palette.ADAPTIVE), "PNG")


def transparent_png() -> bytes:
    """Fully transparent red: composited onto white, it is a white picture."""
    return encode(Image.new("RGBA", (80, 80), (*COLORS["red"][0], 0)), "PNG")


def opaque_rgba_png(color: str = "blue") -> bytes:
    return encode(Image.new("RGBA", (80, 80), (*COLORS[color][0], 255)), "PNG")


def gray16_png(value: int = 65535) -> bytes:
    samples = np.full((40, 40), value, dtype=np.uint16)
    return encode(Image.fromarray(samples), "PNG")


def webp(color: str = "yellow") -> bytes:
    return encode(solid(color), "WEBP", quality=95)


def heic(color: str = "red") -> bytes:
    """What an iPhone sends when a picture goes as a file."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    return encode(solid(color), "HEIF", quality=90)


def avif(color: str = "blue") -> bytes:
    return encode(solid(color), "AVIF", quality=90)


def two_frame_gif(first: str = "red", second: str = "blue") -> bytes:
    frames = [solid(first).convert("P"), solid(second).convert("P")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def bmp(color: str = "blue") -> bytes:
    return encode(solid(color), "BMP")


def tiff(color: str = "green") -> bytes:
    return encode(solid(color), "TIFF", compression="tiff_lzw")


def rotated_jpeg() -> bytes:
    """Stored 120 wide by 60 high, red left half, with EXIF orientation 6 (rotate 90° clockwise)."""
    image = Image.new("RGB", (120, 60), COLORS["blue"][0])
    image.paste(COLORS["red"][0], (0, 0, 60, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image, "JPEG", quality=95, exif=exif.tobytes())


def truncated_jpeg() -> bytes:
    data = encode(Image.effect_noise((200, 200), 64).convert("RGB"), "JPEG", quality=90)
    return data[: len(data) // 2]


def svg() -> bytes:
    return b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def huge_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A PNG whose header claims absurd dimensions: a decompression bomb's calling card."""
    raw = b"\x00" * (width + 1)  # one row is enough to make the claim
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


# (file name, bytes, the caption it must get) -- names lie about the format on purpose.
GOOD = [
    ("baseline.jpg", lambda: jpeg("red"), "a red square"),
    ("progressive.png", lambda: jpeg("blue", progressive=True), "a blue square"),
    ("cmyk.jpg", lambda: cmyk_jpeg("red"), "a red square"),
    ("palette.gif", lambda: palette_png("green"), "a green square"),
    ("alpha.png", transparent_png, "a white square"),
    ("opaque-alpha.png", lambda: opaque_rgba_png("blue"), "a blue square"),
    ("sixteen-bit.png", lambda: gray16_png(65535), "a white square"),
    ("photo.webp", lambda: webp("yellow"), "a yellow square"),
    ("animated.gif", lambda: two_frame_gif("red", "blue"), "a red square"),
    ("bitmap.bmp", lambda: bmp("blue"), "a blue square"),
    ("scan.tiff", lambda: tiff("green"), "a green square"),
    ("iphone.jpg", lambda: heic("red"), "a red square"),
    ("new-phone.png", lambda: avif("blue"), "a blue square"),
    ("no-extension", lambda: jpeg("yellow"), "a yellow square"),
]

# (file name, bytes, a word the error message must contain)
BAD = [
    ("empty.jpg", lambda: b"", "empty"),
    ("truncated.jpg", truncated_jpeg, "damaged"),
    ("notes.png", lambda: b"Just some text, definitely not a picture.\n" * 20, "isn't a picture"),
    ("drawing.svg", svg, "SVG"),
    ("drawing.png", svg, "SVG"),
    ("document.jpg", pdf, "PDF"),
    ("huge.png", huge_png, "too big"),
]
