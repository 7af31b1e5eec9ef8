"""A private chat's conversation about a picture: a few turns, forgotten once it goes quiet."""

from __future__ import annotations

from bot import conversations
from bot.conversations import Conversations
from captioning.questions import Question

Q1, Q2, Q3, Q4 = (Question(f"question {n}?") for n in range(1, 5))


def test_the_latest_turns_earliest_first_and_only_a_few(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(conversations.time, "monotonic", lambda: now[0])
    talks = Conversations(window_s=600, turns=3)
    for question, answer in ((Q1, "a"), (Q2, "b"), (Q3, "c"), (Q4, "d")):
        talks.add((5, "pic"), question, answer)
    assert talks.earlier((5, "pic")) == ((Q2, "b"), (Q3, "c"), (Q4, "d"))
    assert talks.earlier((5, "other")) == () and talks.earlier((6, "pic")) == ()


def test_a_conversation_gone_quiet_is_forgotten(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(conversations.time, "monotonic", lambda: now[0])
    talks = Conversations(window_s=600)
    talks.add((5, "pic"), Q1, "a")
    now[0] += 599
    assert talks.earlier((5, "pic")) == ((Q1, "a"),)
    talks.add((5, "pic"), Q2, "b")  # each turn keeps it going
    now[0] += 599
    assert talks.earlier((5, "pic")) == ((Q1, "a"), (Q2, "b"))
    now[0] += 2
    assert talks.earlier((5, "pic")) == ()
