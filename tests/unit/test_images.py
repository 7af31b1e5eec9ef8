"""Picture intake: every accepted format normalises to RGB; bad input gets a sentence."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from captioning import InvalidImage, load_image
from captioning import images as images_module
from tests.support import pictures
from tests.support.tiny_models import COLORS


def center(image: Image.Image) -> tuple[int, int, int]:
    return image.getpixel((image.width // 2, image.height // 2))


def close_to(actual, expected, tolerance=12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


@pytest.mark.parametrize(
    ("make", "color"),
    [
        (lambda: pictures.jpeg("red"), "red"),
        (lambda: pictures.jpeg("blue", progressive=True), "blue"),
        (lambda: pictures.cmyk_jpeg("red"), "red"),
        (lambda: pictures.palette_png("green"), "green"),
        (lambda: pictures.opaque_rgba_png("blue"), "blue"),
        (lambda: pictures.webp("yellow"), "yellow"),
        (lambda: pictures.bmp("blue"), "blue"),
        (lambda: pictures.tiff("green"), "green"),
    ],
    ids=["jpeg", "progressive-jpeg", "cmyk-jpeg", "palette-png", "rgba-png", "webp", "bmp", "tiff"],
)
def test_accepted_formats_decode_to_rgb_with_their_colors(make, color):
    image = load_image(make())
    assert image.mode == "RGB"
    assert close_to(center(image), COLORS[color][0])


def test_transparency_is_composited_onto_white():
    assert center(load_image(pictures.transparent_png())) == (255, 255, 255)


def test_sixteen_bit_samples_are_scaled_not_clipped():
    # 30000 / 65535 of full scale is a mid grey (about 117), not the white that clipping gives.
    grey = center(load_image(pictures.gray16_png(30000)))
    assert close_to(grey, (117, 117, 117), tolerance=2)


def test_gif_gives_its_first_frame():
    assert close_to(center(load_image(pictures.two_frame_gif("red", "blue"))), COLORS["red"][0], 30)


def test_exif_orientation_is_applied():
    image = load_image(pictures.rotated_jpeg())
    # Stored 120 x 60 with the red half on the left; rotated 90° clockwise it stands 60 x 120
    # with the red half on top.
    assert image.size == (60, 120)
    assert close_to(image.getpixel((30, 20)), COLORS["red"][0], 30)
    assert close_to(image.getpixel((30, 100)), COLORS["blue"][0], 30)


def test_min_side_lets_jpeg_decode_smaller_but_never_below_it():
    big = pictures.encode(Image.new("RGB", (2000, 1600), COLORS["red"][0]), "JPEG")
    image = load_image(big, min_side=224)
    assert 224 <= min(image.size) < 1600


@pytest.mark.parametrize(("name", "make", "word"), pictures.BAD, ids=[b[0] for b in pictures.BAD])
def test_bad_input_gets_one_human_sentence(name, make, word):
    with pytest.raises(InvalidImage) as caught:
        load_image(make())
    message = str(caught.value)
    assert word.lower() in message.lower()
    assert message.endswith(".") and "\n" not in message
    assert "Error" not in message and "Traceback" not in message


def test_dimensions_are_checked_before_any_pixel_is_decoded():
    # 30000 x 30000 claimed by a file of a few hundred bytes: refused from the header alone.
    data = pictures.huge_png(30_000, 30_000)
    assert len(data) < 1000
    with pytest.raises(InvalidImage, match="too big"):
        load_image(data)


def test_a_picture_over_the_pixel_limit_is_refused(monkeypatch):
    monkeypatch.setattr(images_module, "MAX_PIXELS", 50 * 50)
    with pytest.raises(InvalidImage, match="too big"):
        load_image(pictures.encode(Image.new("RGB", (60, 60)), "PNG"))


def test_pillows_bomb_warning_is_an_error(monkeypatch):
    # Pillow warns (only warns) past MAX_IMAGE_PIXELS; the intake refuses instead.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(InvalidImage):
        load_image(pictures.encode(Image.new("RGB", (40, 40)), "PNG"))


def test_decoders_outside_the_accepted_formats_never_run():
    # Pillow can read these, but they are not pictures people send; their decoders stay off.
    for fmt in ("ICO", "TGA", "PPM", "PCX"):
        data = pictures.encode(Image.new("RGB", (16, 16), (255, 0, 0)), fmt)
        with pytest.raises(InvalidImage):
            load_image(data)


@pytest.mark.parametrize(
    ("make", "color"), [(pictures.heic, "red"), (pictures.avif, "blue")], ids=["heic", "avif"]
)
def test_heic_and_avif_from_phones_are_read(make, color):
    image = load_image(make(color))
    assert image.mode == "RGB" and close_to(center(image), COLORS[color][0], 20)


def test_a_broken_heic_is_refused_as_damaged():
    heic_header = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
    with pytest.raises(InvalidImage) as caught:
        load_image(heic_header)
    assert caught.value.reason in ("damaged", "not_a_picture")


def test_a_big_picture_is_reduced_as_soon_as_it_is_decoded():
    big = pictures.encode(Image.new("RGB", (4000, 3000), COLORS["green"][0]), "PNG")
    image = load_image(big, min_side=224)
    assert 448 <= min(image.size) < 1000  # whole-factor reduction, never below twice the input
    assert close_to(center(image), COLORS["green"][0])


def test_a_50_megapixel_jpeg_decodes_at_a_fraction_of_its_size(monkeypatch):
    # What the decoder produced, before any reduction: the result alone can't tell, since
    # _reduce() shrinks a full-size decode too. (tracemalloc can't see Pillow's pixel memory.)
    decoded = []
    reduce = images_module._reduce
    monkeypatch.setattr(
        images_module,
        "_reduce",
        lambda image, min_side: decoded.append(image.size) or reduce(image, min_side),
    )
    huge = pictures.encode(Image.new("RGB", (8000, 6000), COLORS["red"][0]), "JPEG", quality=50)
    image = load_image(huge, min_side=224)
    ((width, height),) = decoded
    assert width * height * 3 < 5_000_000  # a few MB decoded, not the 144 MB of full size
    assert min(width, height) >= 224 and close_to(center(image), COLORS["red"][0])


def test_full_size_decodes_share_a_pixel_budget(monkeypatch):
    import threading

    budget = images_module._PixelBudget(100)
    monkeypatch.setattr(images_module, "_BUDGET", budget)
    order = []
    with budget.pixels(80):
        waiter = threading.Thread(target=lambda: (budget.pixels(40).__enter__(), order.append("second")))
        waiter.start()
        waiter.join(0.2)
        order.append("first done")  # the second couldn't start while the first held 80 of 100
    waiter.join(5)
    assert order == ["first done", "second"]
    with budget.pixels(500):  # one picture larger than the whole budget still goes, alone
        pass


def test_oversized_files_are_refused_before_decoding(monkeypatch):
    monkeypatch.setattr(images_module, "MAX_BYTES", 100)
    with pytest.raises(InvalidImage, match="too large"):
        load_image(pictures.jpeg())


def test_a_tiny_picture_is_still_a_picture():
    image = load_image(pictures.encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"))
    assert image.size == (1, 1)
    assert np.asarray(image)[0, 0].tolist() == [255, 0, 0]


REASONS = {
    "empty.jpg": "empty",
    "truncated.jpg": "damaged",
    "notes.png": "not_a_picture",
    "drawing.svg": "svg",
    "drawing.png": "svg",
    "document.jpg": "pdf",
    "huge.png": "too_big",
}


@pytest.mark.parametrize(("name", "make", "word"), pictures.BAD, ids=[b[0] for b in pictures.BAD])
def test_bad_input_carries_a_reason_code_for_other_languages(name, make, word):
    with pytest.raises(InvalidImage) as caught:
        load_image(make())
    assert caught.value.reason == REASONS[name]
