"""Where things are in a picture, in plain words: what a model found, and where, to
"On the left: 2 people. In the middle: a dog and a bicycle. On the right: a car."

A blind person asks where things are to know the picture's layout, not its coordinates: three
columns, left to right, are what a sighted friend would say. In each, several of a thing come
first, counted ("3 people"), then the rest in the order the model found them. Pure text work,
for any adapter whose model finds objects (Florence-2's ``<OD>``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

__all__ = ["in_words", "plural"]

# The three columns, by where a thing's centre is, and how each opens.
COLUMNS = (("On the left", 1 / 3), ("In the middle", 2 / 3), ("On the right", 1.0))
# The nouns object detectors name most often whose plural isn't just "s" or "es".
_IRREGULAR = {
    "person": "people",
    "man": "men",
    "woman": "women",
    "child": "children",
    "mouse": "mice",
    "foot": "feet",
    "tooth": "teeth",
    "knife": "knives",
    "leaf": "leaves",
    "shelf": "shelves",
    "sheep": "sheep",
    "fish": "fish",
    "deer": "deer",
    "glasses": "glasses",
    "scissors": "scissors",
}


def in_words(found: Iterable[tuple[str, Sequence[float]]], width: float) -> str:
    """Each (label, (x1, y1, x2, y2)) found on a picture ``width`` wide, by column; "" for nothing."""
    columns: list[Counter[str]] = [Counter() for _ in COLUMNS]
    for label, box in found:
        name = " ".join(label.lower().split())
        if not name or width <= 0:
            continue
        centre = (box[0] + box[2]) / 2 / width
        column = next(i for i, (_, edge) in enumerate(COLUMNS) if centre < edge or edge == 1.0)
        columns[column][name] += 1
    sentences = []
    for (opening, _), counts in zip(COLUMNS, columns, strict=True):
        if counts:
            # Several of a thing first; sorted() keeps the order found among equals.
            things = sorted(counts.items(), key=lambda item: -item[1])
            sentences.append(f"{opening}: {_listed([_counted(n, c) for n, c in things])}.")
    return " ".join(sentences)


def plural(noun: str) -> str:
    """The plural of a noun, or of a phrase's last word: "red car" -> "red cars"."""
    *before, last = noun.split(" ")
    if last in _IRREGULAR:
        last = _IRREGULAR[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        last += "es"
    elif last.endswith("y") and last[-2:-1] not in ("a", "e", "i", "o", "u", ""):
        last = last[:-1] + "ies"
    else:
        last += "s"
    return " ".join([*before, last])


def _counted(noun: str, count: int) -> str:
    if count > 1:
        return f"{count} {plural(noun)}"
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
