"""The template cards' button keys and task ids: what the sender builds, the click handler reads."""

import pytest

from shared.wecom_cards import BadCardKey, card_button_key, card_task_id, parse_card_button_key, parse_card_task_id


def test_button_keys_round_trip():
    assert card_button_key("accept", "20261202-000042") == "accept:20261202-000042"
    assert parse_card_button_key("accept:20261202-000042") == ("accept", "20261202-000042")
    assert parse_card_button_key(card_button_key("return", "20261202-000001")) == ("return", "20261202-000001")


@pytest.mark.parametrize(
    "key", ["", "accept", "accept:", "resolve:20261202-000042", "accept:20261202 000042", "accept:<x>", "a" * 2000]
)
def test_foreign_or_malformed_keys_are_refused(key):
    with pytest.raises(BadCardKey):
        parse_card_button_key(key)


def test_building_refuses_what_wecom_or_the_parser_would_not_take():
    with pytest.raises(BadCardKey):
        card_button_key("close", "20261202-000042")
    with pytest.raises(BadCardKey):
        card_task_id("2026 1202", 0)


def test_task_ids_are_wecom_safe_and_round_trip():
    task_id = card_task_id("20261202-000042", 3)
    assert task_id == "case-20261202-000042-3"
    assert len(task_id.encode()) <= 128 and all(c.isalnum() or c in "_-@" for c in task_id)
    assert parse_card_task_id(task_id) == ("20261202-000042", 3)
    for bad in ("20261202-000042-3", "case-20261202-000042-x", "case-", "case-a b-1"):
        with pytest.raises(BadCardKey):
            parse_card_task_id(bad)
