"""The captioning package's exceptions, in one small tree.

    CaptioningError              anything this package raises on purpose
    ├── InvalidImage             the bytes are not a picture we will describe
    ├── SettingsError            a setting has a value we cannot use (also a ValueError)
    ├── ModelLoadError           a model could not be found or loaded
    ├── Busy                     the executor can't take the picture now; try again shortly
    │   ├── QueueFull            everyone's queue is full (MAX_QUEUE)
    │   └── TooManyQueued        this person has MAX_QUEUED_PER_USER pictures waiting
    ├── RequestTimeout           the picture waited longer than REQUEST_TIMEOUT_S
    ├── Stopped                  the executor stopped before the picture's turn came
    └── InferenceError           the models failed on this picture (alone, after retries)

Every message is one sentence a person can read: front ends show ``str(error)`` as it is,
without the class name. Foreign exceptions are translated where they enter this package,
with ``raise ... from exc`` so the cause stays in the logs; :func:`first_line` gives the
one line of a foreign exception that such a message or a log line quotes.
"""

from __future__ import annotations

__all__ = [
    "Busy",
    "CaptioningError",
    "InferenceError",
    "InvalidImage",
    "ModelLoadError",
    "QueueFull",
    "RequestTimeout",
    "SettingsError",
    "Stopped",
    "TooManyQueued",
    "first_line",
]


class CaptioningError(Exception):
    """Base class of every error this package raises on purpose."""


class InvalidImage(CaptioningError):
    """The input is not a picture we can describe; the message says why, for a person.

    ``reason`` is a stable code for front ends that answer in other languages:
    ``empty``, ``too_large`` (bytes), ``too_big`` (pixels), ``damaged``, ``not_a_picture``,
    ``pdf``, ``svg``, ``heic`` or ``unreadable`` (a file that can't be opened).
    """

    def __init__(self, message: str, reason: str = "not_a_picture") -> None:
        super().__init__(message)
        self.reason = reason


class SettingsError(CaptioningError, ValueError):
    """A setting has a value we cannot use; the message names the setting and what is valid."""


class ModelLoadError(CaptioningError):
    """A model could not be found or loaded."""


class Busy(CaptioningError):
    """The executor can't take this picture now; asking again shortly will work."""


class QueueFull(Busy):
    """Every slot of the queue (MAX_QUEUE) is taken."""


class TooManyQueued(Busy):
    """This person already has MAX_QUEUED_PER_USER pictures waiting."""


class RequestTimeout(CaptioningError):
    """The picture was not described within REQUEST_TIMEOUT_S."""


class Stopped(CaptioningError):
    """The executor stopped (the bot is shutting down) before this picture's turn came."""


class InferenceError(CaptioningError):
    """The models failed on this picture, even in a batch of its own."""


def first_line(exc: BaseException, limit: int | None = None) -> str:
    """The first line of ``str(exc)``, or the exception's class name when it has no text;
    cut to ``limit`` characters when one is given."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if limit is None else line[:limit]
