"""What was asked about a picture in a private chat, and answered, a few minutes back: the
conversation a chat model hears before the next question ("and what is she holding?").

Kept in memory only, for FOLLOW_UP_MINUTES after the last turn, and a few turns at most: a
restart, or a pause, starts a new conversation, and no question is written to disk for it.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

from captioning.questions import Question

__all__ = ["Conversations"]

Turn = tuple[Question, str]  # a question, and its answer in English


class Conversations:
    """The latest turns about each (chat, picture), for ``window_s`` after the last one."""

    def __init__(self, window_s: float, turns: int = 3) -> None:
        self.window_s, self.turns = window_s, turns
        self._talks: dict[Hashable, tuple[float, tuple[Turn, ...]]] = {}

    def earlier(self, key: Hashable) -> tuple[Turn, ...]:
        """The turns about ``key`` still within the window, earliest first; () if none."""
        last, turns = self._talks.get(key, (0.0, ()))
        if time.monotonic() - last > self.window_s:
            self._talks.pop(key, None)
            return ()
        return turns

    def add(self, key: Hashable, question: Question, answer: str) -> None:
        """One more turn about ``key``; the oldest goes past ``turns``, and any talk gone quiet."""
        now = time.monotonic()
        for quiet in [k for k, (last, _) in self._talks.items() if now - last > self.window_s]:
            del self._talks[quiet]
        self._talks[key] = (now, (*self.earlier(key), (question, answer))[-self.turns :])
