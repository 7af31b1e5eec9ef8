"""The pure policies, each on its own, in milliseconds: what becomes of an update after an
error, what is kept of an update, whose turn comes next, what fits in a message, how models
are named, and what a backend can do."""

from __future__ import annotations

import pickle

import pytest
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.replies import fit
from bot.store import StoreUnavailable
from bot.updates.journal import DONE, Deferred, Verdict, verdict
from bot.updates.minimal import minimal
from captioning import Capabilities, Stopped
from captioning.serving.fairqueue import FairQueue
from captioning.settings import ModelRef, parse_models

# -- what becomes of an update after an error ---------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (Deferred("QueueFull", give_up_after_s=600.0), Verdict("busy", 600.0)),
        (Deferred("stopping"), Verdict("busy")),
        (Stopped("stopping"), Verdict("busy")),
        (StoreUnavailable("locked"), Verdict("keep")),
        (ChatMigrated(-1001), DONE),
        (Forbidden("Forbidden: bot was blocked by the user"), DONE),
        (BadRequest("Bad Request: message to reply not found"), DONE),
        (NetworkError("Bad Gateway"), Verdict("telegram")),
        (TimedOut(), Verdict("telegram")),
        (RetryAfter(5), Verdict("telegram")),
    ],
    ids=lambda value: type(value).__name__,
)
def test_each_error_has_its_verdict(error, expected):
    assert verdict(1, error) == expected


def test_an_error_nobody_expected_sets_the_update_aside_and_says_what_it_was():
    outcome = verdict(1, KeyError("photo"))
    assert outcome.kind == "aside" and outcome.detail == "KeyError: 'photo'"
    assert not outcome.retried and Verdict("busy").retried and Verdict("telegram").retried


# -- what is kept of an update ------------------------------------------------------------------


def test_an_update_keeps_what_answering_it_needs_and_nothing_else():
    update = {
        "update_id": 9,
        "message": {
            "message_id": 3,
            "date": 1,
            "chat": {"id": -5, "type": "supergroup", "title": "Our group"},
            "from": {
                "id": 31,
                "is_bot": False,
                "first_name": "Ana",
                "username": "ana",
                "language_code": "es",
            },
            "caption": "what color is it?",
            "photo": [{"file_id": "f", "file_unique_id": "u", "width": 9, "height": 9, "file_size": 100}],
            "document": {"file_id": "d", "file_unique_id": "du", "file_name": "passport.jpg"},
            "location": {"latitude": 40.4, "longitude": -3.7},
            "author_signature": "Carmen",
            "reply_to_message": {"message_id": 2, "date": 0, "chat": {"id": -5, "type": "supergroup"}},
        },
    }
    kept = minimal(update)["message"]
    assert kept["chat"] == {"id": -5, "type": "supergroup"}
    assert kept["from"] == {"id": 31, "is_bot": False, "first_name": "", "language_code": "es"}
    assert kept["caption"] == "what color is it?" and kept["photo"][0]["file_id"] == "f"
    assert kept["document"] == {"file_id": "d", "file_unique_id": "du"}
    assert "location" not in kept and "author_signature" not in kept
    assert kept["reply_to_message"]["message_id"] == 2


def test_a_button_press_keeps_its_data_and_who_pressed():
    press = {
        "update_id": 4,
        "callback_query": {
            "id": "q",
            "from": {"id": 7, "is_bot": False, "first_name": "Bea", "last_name": "Ruiz"},
            "chat_instance": "c",
            "data": "again",
        },
    }
    assert minimal(press)["callback_query"] == {
        "id": "q",
        "from": {"id": 7, "is_bot": False, "first_name": ""},
        "chat_instance": "c",
        "data": "again",
    }


# -- whose turn comes next ----------------------------------------------------------------------


def test_chats_take_turns_and_each_chat_keeps_its_order():
    queue: FairQueue[str] = FairQueue()
    for lane, item in [("album", "a1"), ("album", "a2"), ("album", "a3"), ("ana", "b1"), ("bea", "c1")]:
        queue.put(lane, item)
    assert [queue.position(lane, item) for lane, item in [("album", "a1"), ("ana", "b1"), ("bea", "c1")]] == [
        1,
        2,
        3,
    ]
    assert queue.position("album", "a3") == 5  # a2 and a3 wait for the others' turns
    assert queue.take(4, 0.0) == ["a1", "b1", "c1", "a2"]
    assert queue.position("album", "a3") == 1
    assert queue.position("album", "gone") == 0


def test_an_item_taken_out_gives_up_its_place():
    queue: FairQueue[str] = FairQueue()
    for item in ("x", "y"):
        queue.put("lane", item)
    assert queue.remove("lane", "x") and not queue.remove("lane", "x")
    assert len(queue) == 1 and queue.position("lane", "y") == 1


# -- what fits in a message ---------------------------------------------------------------------


def test_lines_that_fit_are_one_message_as_they_are():
    assert fit(["one", "two"]) == "one\ntwo"


def test_lines_past_the_limit_are_left_out_and_counted():
    text = fit([f"line {n}" for n in range(10)], "en", limit=60)
    assert len(text) <= 60
    assert text.endswith("more not shown)") and text.startswith("line 0\nline 1")


# -- how models are named -----------------------------------------------------------------------


def test_models_are_code_model_pairs_with_an_optional_target_token():
    assert parse_models("es=Helsinki-NLP/opus-mt-en-es, pt=x/tc-big@>>por<<", "TRANSLATION_MODELS") == {
        "es": ModelRef("Helsinki-NLP/opus-mt-en-es"),
        "pt": ModelRef("x/tc-big", ">>por<<"),
    }
    assert parse_models("", "TRANSLATION_MODELS") == {}


@pytest.mark.parametrize("value", ["es", "en=x", "es=a,es=b", "spanish=x", "es="])
def test_a_bad_model_list_names_its_setting(value):
    with pytest.raises(ValueError, match="TRANSLATION_MODELS"):
        parse_models(value, "TRANSLATION_MODELS")


# -- what a backend can do ----------------------------------------------------------------------


def test_capabilities_say_which_kinds_and_sizes_and_travel_whole():
    capabilities = Capabilities(("en", "es"), ("en",), {"describe": 224, "read": 768, "translate": 0}, 8)
    assert capabilities.can("read") and not capabilities.can("answer")
    assert capabilities.input_size("read") == 768 and capabilities.kinds == ("describe", "read", "translate")
    assert Capabilities.from_dict(capabilities.as_dict()) == capabilities
    assert pickle.loads(pickle.dumps(capabilities)) == capabilities
    with pytest.raises(ValueError, match="can't do 'answer'"):
        capabilities.input_size("answer")
    with pytest.raises(TypeError):
        capabilities.sizes["answer"] = 224  # type: ignore[index]


def test_a_press_keeps_which_buttons_its_message_shows_by_their_data_only():
    press = {
        "update_id": 5,
        "callback_query": {
            "id": "q",
            "from": {"id": 7, "is_bot": False, "first_name": "Bea"},
            "chat_instance": "c",
            "data": "lang:es",
            "message": {
                "message_id": 3,
                "date": 0,
                "chat": {"id": -5, "type": "channel", "title": "News"},
                "text": "Descriptions here are in: English.",
                "reply_markup": {"inline_keyboard": [[{"text": "✓ English", "callback_data": "lang:en"}]]},
            },
        },
    }
    kept = minimal(press)["callback_query"]["message"]
    assert kept["reply_markup"] == {"inline_keyboard": [[{"text": "", "callback_data": "lang:en"}]]}
    assert "text" in kept and kept["text"] == "Descriptions here are in: English."


# -- what one person may make the bot say ---------------------------------------------------------


def test_a_person_has_a_minute_of_messages_and_hears_about_it_once():
    from bot.quota import PersonQuota

    quota = PersonQuota(per_minute=3)
    ana, bea = (-5, 1), (-5, 2)
    quota.charge(ana, 2)
    assert not quota.over(ana)
    quota.charge(ana, 1)
    assert quota.over(ana) and not quota.over(bea)  # each person has their own
    assert quota.tell(ana) and not quota.tell(ana)  # told once, then quiet
    quota.charge(ana, -1)  # a reservation given back
    assert not quota.over(ana)


def test_a_file_costs_by_its_size_and_a_message_one():
    from telegram import InputFile

    from bot.sending import weight

    assert weight({"text": "hi"}) == 1
    assert weight({"document": InputFile(b"x" * 100, filename="a.txt")}) == 1
    assert weight({"document": InputFile(b"x" * 10_000, filename="a.txt")}) == 3
