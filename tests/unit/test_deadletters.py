"""Choosing dead letters: by consumer group, reason, original topic and when they failed."""

import argparse
import base64
import json
from datetime import UTC, datetime

import pytest

from shared.deadletters import LetterFilter, moment, original_message


def letter(**fields) -> dict:
    return {
        "original_topic": "county1.gridlink.cases",
        "consumer_group": "dispatch-330727",
        "reason": "handler_failed",
        "failed_at": "2026-12-03T01:30:00+00:00",
        "value_base64": base64.b64encode(json.dumps({"type": "case.dispatched"}).encode()).decode(),
    } | fields


def test_a_filter_matches_by_group_reason_topic_and_time_range():
    one = letter()
    assert LetterFilter().matches(one, topic_prefix="county1.")
    assert LetterFilter(topic="gridlink.cases").matches(one, topic_prefix="county1.")
    assert not LetterFilter(topic="gridlink.reports").matches(one, topic_prefix="county1.")
    assert not LetterFilter(topic="gridlink.cases").matches(one)  # the deployment's prefix counts
    assert not LetterFilter(consumer_group="notify").matches(one, topic_prefix="county1.")
    assert not LetterFilter(reason="malformed").matches(one, topic_prefix="county1.")
    beijing = moment("2026-12-03T09:30:00+08:00")  # the same instant as failed_at
    assert LetterFilter(since=beijing, until=beijing).matches(one, topic_prefix="county1.")  # both ends included
    later = datetime(2026, 12, 3, 2, tzinfo=UTC)
    assert not LetterFilter(since=later).matches(one, topic_prefix="county1.")
    assert LetterFilter(until=later).matches(one, topic_prefix="county1.")
    assert not LetterFilter(since=later).matches(letter(failed_at=None), topic_prefix="county1.")


def test_each_filter_replays_under_its_own_name():
    """A replay remembers what it replayed per filter: two different filters never share a group."""
    names = {
        LetterFilter().name(),
        LetterFilter(reason="malformed").name(),
        LetterFilter(topic="gridlink.cases").name(),
        LetterFilter(since=datetime(2026, 12, 3, tzinfo=UTC)).name(),
    }
    assert len(names) == 4 and LetterFilter().name() == "any.any.any.any.any"


def test_show_decodes_the_original_message_and_times_need_their_offset():
    assert original_message(letter()) == {"type": "case.dispatched"}
    assert original_message(letter(value_base64=base64.b64encode(b"\xff not json").decode())).endswith("not json")
    with pytest.raises(argparse.ArgumentTypeError, match=r"\+08:00"):
        moment("2026-12-03T09:30")
