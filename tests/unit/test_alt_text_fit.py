"""What goes into IPTC Alt Text: at most 250 characters, cut at a sentence or a word; and which
files can take it, known from their first bytes whatever their name."""

from __future__ import annotations

import pytest

from captioning.cli.alt_text import MAX_CHARS, fit, picture_format
from tests.support import pictures


def test_a_caption_within_the_limit_is_kept_on_one_line():
    assert fit("a dog  running\non the beach ") == "a dog running on the beach"


def test_a_long_text_keeps_the_whole_sentences_that_fit():
    first = "A red bicycle leans against a brick wall in the afternoon sun. " * 3
    text = first + "Behind it, a shop window shows shelves of old books and a sleeping cat."
    assert len(text) > MAX_CHARS
    assert fit(text) == first.strip()


def test_one_long_sentence_is_cut_at_a_word_with_an_ellipsis():
    text = "a crowd of people " * 20
    cut = fit(text)
    assert len(cut) <= MAX_CHARS and cut.endswith("…")
    kept = cut.removesuffix("…")
    assert text.startswith(kept) and text[len(kept)] == " "  # a whole word, never half of one


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (pictures.jpeg, "JPEG"),
        (pictures.cmyk_jpeg, "JPEG"),
        (pictures.palette_png, "PNG"),
        (pictures.webp, "WebP"),
        (pictures.tiff, "TIFF"),
        (pictures.heic, "HEIC"),
        (pictures.avif, "AVIF"),
        (pictures.two_frame_gif, "GIF"),
        (pictures.bmp, "BMP"),
        (pictures.pdf, None),
    ],
)
def test_the_format_is_known_from_the_bytes(make, kind):
    assert picture_format(make()) == kind
