"""``--write-alt-text``: each description goes into its picture as IPTC Alt Text, in English and
Spanish, read back by ExifTool (which wrote it) and by Pillow; the pixels untouched, the file
replaced whole, its time kept; formats and files that can't take it refused in one line."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from captioning.__main__ import main
from captioning.cli.alt_text import AltTextWriter, picture_format
from captioning.tasks import Translated
from tests.support import pictures
from tests.support.metadata import (
    decoded,
    exiftool_tags,
    getxmp_alternative,
    image_data,
    language_alternative,
)

if shutil.which("exiftool") is None:  # CI installs it (.ci/run), and requires these tests to run
    if os.environ.get("REQUIRE_EXIFTOOL") == "1":
        raise RuntimeError("REQUIRE_EXIFTOOL=1, but exiftool isn't installed (libimage-exiftool-perl)")
    pytest.skip("ExifTool isn't installed (libimage-exiftool-perl)", allow_module_level=True)

OLD = 1_500_000_000  # a modification time in 2017, to see it kept


@pytest.fixture(scope="module")
def writer():
    """One ExifTool for the tests that write with it directly, started and checked once."""
    writer = AltTextWriter()
    yield writer
    writer.close()


def put(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


def test_alt_text_goes_into_jpeg_png_and_webp_in_english_and_spanish(tmp_path, model_env, capsys):
    files = {
        "photo.jpg": pictures.jpeg("red"),
        "chart.png": pictures.encode(pictures.solid("blue"), "PNG"),
        "banner.webp": pictures.webp("yellow"),
    }
    for name, data in files.items():
        put(tmp_path, name, data)
    assert main(["--write-alt-text", "--jsonl", str(tmp_path)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(Path(e["file"]).name, e["alt_text"]) for e in lines] == [
        ("banner.webp", "written"),
        ("chart.png", "written"),
        ("photo.jpg", "written"),
    ]
    for entry in lines:
        path = Path(entry["file"])
        after = path.read_bytes()
        expected = {"x-default": entry["english"], "es": entry["spanish"]}
        assert language_alternative(path, "AltTextAccessibility") == expected, path.name
        assert getxmp_alternative(path, "AltTextAccessibility") == expected, path.name
        assert exiftool_tags(path) == {
            "AltTextAccessibility": entry["english"],
            "AltTextAccessibility-es": entry["spanish"],
        }
        assert image_data(after) == image_data(files[path.name]), path.name  # never encoded again
        assert decoded(after) == decoded(files[path.name])
        assert after != files[path.name] and len(after) > len(files[path.name])
        assert path.stat().st_mtime == OLD
        assert entry["sha256"] == hashlib.sha256(after).hexdigest()  # what --skip-done will find
    assert entry["english"] == "a red square" and entry["spanish"] == "un cuadrado rojo"
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no copy left behind


WRITABLE = [
    ("scan.tiff", pictures.tiff, "TIFF"),
    ("iphone.heic", pictures.heic, "HEIC"),
    ("new-phone.avif", pictures.avif, "AVIF"),
    ("animated.gif", pictures.two_frame_gif, "GIF"),
    ("lying-name.jpg", pictures.heic, "HEIC"),  # ExifTool goes by the extension: the copy's is right
    ("progressive.jpg", lambda: pictures.jpeg("blue", progressive=True), "JPEG"),
    ("palette.png", pictures.palette_png, "PNG"),
    ("rotated.jpg", pictures.rotated_jpeg, "JPEG"),
]


@pytest.mark.parametrize(("name", "make", "kind"), WRITABLE, ids=[w[0] for w in WRITABLE])
def test_every_writable_format_takes_alt_text_and_keeps_its_pixels(tmp_path, writer, name, make, kind):
    before = make()
    path = put(tmp_path, name, before)
    assert picture_format(before) == kind
    text = Translated("a red square", {"es": "un cuadrado rojo"})
    written = writer.write(path, before, path.stat(), text, None)
    assert written.status == "written", written.reason
    after = path.read_bytes()
    assert decoded(after) == decoded(before)
    assert exiftool_tags(path)["AltTextAccessibility-es"] == "un cuadrado rojo"
    if kind in ("JPEG", "PNG"):
        assert image_data(after) == image_data(before)
        assert language_alternative(path, "AltTextAccessibility")["x-default"] == "a red square"
    assert path.stat().st_mtime == OLD


def test_a_damaged_file_is_refused_in_one_line_and_left_untouched(tmp_path, model_env, capsys):
    truncated = put(tmp_path, "a-truncated.jpg", pictures.truncated_jpeg())
    # Decodes (Pillow passes over the text after the pixels), but its metadata is damaged:
    # ExifTool won't write into it.
    png = pictures.encode(pictures.solid("green"), "PNG")
    end = png.rindex(b"IEND") - 4
    bad_chunk = struct.pack(">I", 13) + b"tEXtComment\x00hello" + struct.pack(">I", zlib.crc32(b"x"))
    bad_crc = put(tmp_path, "b-bad-crc.png", png[:end] + bad_chunk + png[end:])
    good = put(tmp_path, "c-good.jpg", pictures.jpeg("red"))
    contents = {path: path.read_bytes() for path in (truncated, bad_crc)}
    assert main(["--write-alt-text", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    refusals = [line for line in captured.err.splitlines() if "alt text not written" in line]
    assert refusals == [
        f"{bad_crc}: alt text not written: Its metadata can't be written (ExifTool: Bad CRC for tEXt chunk)."
    ]
    assert f"{truncated}\n  not described: The picture is incomplete or damaged" in captured.out
    assert "Traceback" not in captured.err
    for path, data in contents.items():
        assert path.read_bytes() == data and path.stat().st_mtime == OLD, path.name
    assert exiftool_tags(good)["AltTextAccessibility"] == "a red square"
    assert captured.err.splitlines()[-2:] == [
        "Described 2, rejected 1 (damaged: 1).",
        "Alt text written into 1, refused for 1 (damaged metadata: 1).",
    ]


def test_a_format_without_xmp_is_refused_by_name_and_still_described(tmp_path, model_env, capsys):
    bitmap = put(tmp_path, "old.bmp", pictures.bmp("blue"))
    before = bitmap.read_bytes()
    assert main(["--write-alt-text", "--json", str(bitmap)]) == 1
    captured = capsys.readouterr()
    [entry] = json.loads(captured.out)
    assert entry["english"] == "a blue square"
    assert entry["alt_text"] == "refused"
    assert entry["alt_text_error"].startswith("BMP files can't carry alt text; JPEG, PNG, WebP, TIFF")
    assert f"{bitmap}: alt text not written: BMP files can't carry alt text" in captured.err
    assert bitmap.read_bytes() == before


def test_alt_text_already_there_is_kept_and_counted_unless_overwrite(tmp_path, model_env, capsys):
    path = put(tmp_path, "kept.jpg", pictures.jpeg("red"))
    other = put(tmp_path, "new.jpg", pictures.jpeg("green"))
    subprocess.run(
        ["exiftool", "-q", "-overwrite_original", "-P", "-XMP-iptcCore:AltTextAccessibility=Our logo, in red",
         "-XMP-iptcCore:AltTextAccessibility-fr=Notre logo", str(path)],
        check=True,
    )  # fmt: skip
    before = path.read_bytes()
    assert main(["--write-alt-text", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "Alt text: kept (the picture has alt text already; --overwrite replaces it)" in captured.out
    assert captured.err.splitlines()[-1] == (
        "Alt text written into 1, kept in 1 that had it (--overwrite replaces it)."
    )
    assert path.read_bytes() == before
    assert exiftool_tags(other)["AltTextAccessibility"] == "a green square"

    assert main(["--write-alt-text", "--overwrite", str(path)]) == 0
    assert exiftool_tags(path) == {  # replaced whole: no French left from before
        "AltTextAccessibility": "a red square",
        "AltTextAccessibility-es": "un cuadrado rojo",
    }
    assert path.stat().st_mtime == OLD


def test_detailed_goes_into_extended_description(tmp_path, model_env, capsys):
    path = put(tmp_path, "photo.png", pictures.encode(pictures.solid("white"), "PNG"))
    assert main(["--write-alt-text", "--detailed", "--json", str(path)]) == 0
    [entry] = json.loads(capsys.readouterr().out)
    assert entry["detailed"] == {"english": "a white square", "translations": {"es": "un cuadrado blanco"}}
    expected = {"x-default": "a white square", "es": "un cuadrado blanco"}
    assert language_alternative(path, "ExtDescrAccessibility") == expected
    assert getxmp_alternative(path, "ExtDescrAccessibility") == expected
    assert language_alternative(path, "AltTextAccessibility") == expected


def test_lang_chooses_the_languages_written(tmp_path, tiny_model_dirs, monkeypatch, capsys):
    for name, value in {**tiny_model_dirs.env(more_languages=True), "DEVICE": "cpu"}.items():
        monkeypatch.setenv(name, value)
    path = put(tmp_path, "photo.webp", pictures.webp("red"))
    assert main(["--write-alt-text", "--lang", "fr,pt", str(path)]) == 0
    assert language_alternative(path, "AltTextAccessibility") == {
        "x-default": "a red square",
        "fr": "un carré rouge",
        "pt": "um quadrado vermelho",
    }


def test_a_new_modification_time_when_asked(tmp_path, model_env, capsys):
    path = put(tmp_path, "photo.jpg", pictures.jpeg("red"))
    assert main(["--write-alt-text", "--no-keep-mtime", str(path)]) == 0
    assert path.stat().st_mtime > OLD


def test_a_caption_too_long_for_alt_text_is_cut_and_kept_whole_in_extended_description(tmp_path, writer):
    sentence = "A long table of people eating dinner together in a garden under strings of lights. "
    long = (sentence * 4).strip()
    path = put(tmp_path, "long.jpg", pictures.jpeg("red"))
    written = writer.write(path, path.read_bytes(), path.stat(), Translated(long, {"es": "corto"}), None)
    assert written.status == "written"
    tags = exiftool_tags(path)
    assert tags["AltTextAccessibility"] == (sentence * 3).strip()  # whole sentences, 248 characters
    assert len(tags["AltTextAccessibility"]) <= 250
    assert tags["ExtDescrAccessibility"] == long
    assert tags["AltTextAccessibility-es"] == tags["ExtDescrAccessibility-es"] == "corto"


def test_a_read_only_picture_is_refused_and_untouched(tmp_path, model_env, capsys):
    path = put(tmp_path, "locked.jpg", pictures.jpeg("red"))
    path.chmod(0o444)
    assert main(["--write-alt-text", str(path)]) == 1
    assert f"{path}: alt text not written: The file is read-only." in capsys.readouterr().err


def test_without_exiftool_the_flag_is_one_line_before_any_model_loads(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("CAPTION_MODEL", str(tmp_path / "nowhere"))  # never reached
    path = put(tmp_path, "photo.jpg", pictures.jpeg("red"))
    assert main(["--write-alt-text", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "error: --write-alt-text needs ExifTool, which isn't installed "
        "(Debian/Ubuntu: apt install libimage-exiftool-perl; macOS: brew install exiftool)."
    ]
