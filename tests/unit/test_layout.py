"""Where things are, in words: three columns, several of a thing counted first."""

from __future__ import annotations

import pytest

from captioning.layout import in_words, plural


def box(column: int, row: int = 0) -> tuple[float, float, float, float]:
    """A 10 px box in column 0, 1 or 2 of a 90 px wide picture."""
    return (column * 30 + 10, row * 30, column * 30 + 20, row * 30 + 10)


def test_each_column_in_order_left_to_right():
    found = [("car", box(2)), ("dog", box(1)), ("person", box(0)), ("bicycle", box(1))]
    assert (
        in_words(found, 90)
        == "On the left: a person. In the middle: a dog and a bicycle. On the right: a car."
    )


def test_several_of_a_thing_come_first_counted():
    found = [("dog", box(0)), ("person", box(0)), ("person", box(0, 1)), ("Person", box(0, 2))]
    assert in_words(found, 90) == "On the left: 3 people and a dog."


def test_nothing_found_is_empty_and_unnamed_things_are_left_out():
    assert in_words([], 90) == ""
    assert in_words([("  ", box(0))], 90) == ""


def test_articles_and_lists_of_three():
    found = [("apple", box(1)), ("orange", box(1)), ("banana", box(1))]
    assert in_words(found, 90) == "In the middle: an apple, an orange and a banana."


@pytest.mark.parametrize(
    ("noun", "many"),
    [
        ("person", "people"),
        ("bus", "buses"),
        ("box", "boxes"),
        ("bench", "benches"),
        ("cherry", "cherries"),
        ("toy", "toys"),
        ("red car", "red cars"),
        ("traffic light", "traffic lights"),
        ("sheep", "sheep"),
    ],
)
def test_plurals(noun, many):
    assert plural(noun) == many
