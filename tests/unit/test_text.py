"""Generated text, tidied (captioning.text)."""

from __future__ import annotations

import pytest

from captioning.text import whole_sentences


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("A dog on a beach. It is running towards the", "A dog on a beach."),
        ("A dog on a beach! Is it running? Maybe, the", "A dog on a beach! Is it running?"),
        ("A dog on a beach. It is running.", "A dog on a beach. It is running."),
        ("a red square", "a red square"),  # one sentence, unfinished: all there is, kept
        ("A sign for St. Mary's Church and a", "A sign for St. Mary's Church and a"),
        ("Dr. Lee and J. Smith. Behind them a", "Dr. Lee and J. Smith."),
        ("The price is 3.50 and the", "The price is 3.50 and the"),
        ("It says: «Hola.» Then the", "It says: «Hola.»"),
        ("", ""),
    ],
)
def test_a_text_cut_short_keeps_its_whole_sentences(written, kept):
    assert whole_sentences(written) == kept
