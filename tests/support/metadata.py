"""Reading back what ``--write-alt-text`` wrote, with a reader other than the one that wrote it,
and a picture's encoded pixel data without its metadata.

The second reader is Pillow: it finds the XMP packet in each container itself (JPEG's APP1
segment, PNG's iTXt chunk, WebP's XMP chunk), and the packet is parsed here with the XML
namespaces spelled out, so a field in the wrong namespace isn't found. ``Image.getxmp()``
(Pillow's own parse, with defusedxml) is read too, as a program that uses it would.
"""

from __future__ import annotations

import io
import json
import struct
import subprocess
from pathlib import Path
from typing import Any

from defusedxml import ElementTree
from PIL import Image

IPTC_CORE = "http://iptc.org/std/Iptc4xmpCore/1.0/xmlns/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


def xmp_packet(path: Path) -> bytes:
    """The XMP packet as Pillow finds it in the file (JPEG, PNG, WebP, TIFF)."""
    with Image.open(path) as image:
        info = image.info
        packet = info.get("xmp") or info.get("XML:com.adobe.xmp") or b""
        if not packet and image.format == "TIFF":
            packet = image.tag_v2.get(700, b"")  # XMLPacket
    return packet.encode() if isinstance(packet, str) else bytes(packet)


def language_alternative(path: Path, field: str) -> dict[str, str]:
    """``Iptc4xmpCore:<field>``, a language alternative, as {language: text}: {} if absent."""
    root = ElementTree.fromstring(xmp_packet(path))
    found: dict[str, str] = {}
    for element in root.iter(f"{{{IPTC_CORE}}}{field}"):
        for item in element.iter(f"{{{RDF}}}li"):
            found[item.get(XML_LANG)] = item.text or ""
    return found


def getxmp_alternative(path: Path, field: str) -> dict[str, str]:
    """The same field through Pillow's ``Image.getxmp()`` (which drops the namespaces)."""
    with Image.open(path) as image:
        description = image.getxmp()["xmpmeta"]["RDF"]["Description"]
    items = description[field]["Alt"]["li"]
    return {item["lang"]: item["text"] for item in (items if isinstance(items, list) else [items])}


def exiftool_tags(path: Path) -> dict[str, Any]:
    """The IPTC Core tags as ExifTool reads them: {"AltTextAccessibility-es": ...}."""
    result = subprocess.run(
        ["exiftool", "-j", "-XMP-iptcCore:all", str(path)], capture_output=True, text=True, check=True
    )
    [tags] = json.loads(result.stdout)
    tags.pop("SourceFile")
    return tags


def decoded(data: bytes) -> tuple[str, tuple[int, int], bytes]:
    """Mode, size and raw pixels of the first frame, as Pillow decodes them."""
    import pillow_heif

    pillow_heif.register_heif_opener()
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.mode, image.size, image.tobytes()


def image_data(data: bytes) -> bytes:
    """The encoded pixels of a JPEG, PNG or WebP with every metadata segment or chunk left out:
    equal before and after only if the pixels were never encoded again."""
    if data[:2] == b"\xff\xd8":
        return _jpeg_image_data(data)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        kept = (b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND")
        return b"".join(body for kind, body in _chunks(data, 8, ">I", pad=False) if kind in kept)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kept = (b"VP8 ", b"VP8L", b"ALPH", b"ANIM", b"ANMF")
        return b"".join(body for kind, body in _chunks(data, 12, "<I", pad=True) if kind in kept)
    raise ValueError("not a JPEG, PNG or WebP")


def _jpeg_image_data(data: bytes) -> bytes:
    """Every segment but APP0..APP15 and COM, and the entropy-coded data after SOS, whole."""
    kept, at = [], 2
    while at < len(data):
        marker = data[at + 1]
        if marker == 0xDA:  # start of scan: the rest is the picture
            kept.append(data[at:])
            break
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if not (0xE0 <= marker <= 0xEF or marker == 0xFE):
            kept.append(data[at : at + 2 + length])
        at += 2 + length
    return b"".join(kept)


def _chunks(data: bytes, start: int, size_format: str, *, pad: bool) -> list[tuple[bytes, bytes]]:
    """(kind, payload) of each PNG chunk (size first) or RIFF chunk (kind first)."""
    found, at = [], start
    while at + 8 <= len(data):
        if size_format == ">I":  # PNG: length, type, data, CRC
            (length,) = struct.unpack(">I", data[at : at + 4])
            found.append((data[at + 4 : at + 8], data[at + 8 : at + 8 + length]))
            at += 12 + length
        else:  # RIFF: fourcc, length, data, a pad byte to an even length
            (length,) = struct.unpack("<I", data[at + 4 : at + 8])
            found.append((data[at : at + 4], data[at + 8 : at + 8 + length]))
            at += 8 + length + (length % 2 if pad else 0)
    return found
