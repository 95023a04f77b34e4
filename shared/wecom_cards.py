"""The WeCom template cards (模板卡片) staff act on: their button keys and task ids, built and read
in one place, so the service that sends a card and the one that takes its click agree.

A button's key is `<action>:<case_no>` (接单 `accept`, 退回 `return`); a card's task id is
`case-<case_no>-<n>` (WeCom allows only digits, letters and `_-@`, at most 128 bytes, and never the
same id twice for one application). Pure functions: no I/O.
"""

import re

# The card's button actions and the case action each one takes.
CARD_ACTIONS = {"accept": "acknowledge", "return": "return"}
# What the buttons say (WeCom advises at most 10 characters).
CARD_BUTTON_TEXT = {"accept": "接单", "return": "退回"}
# WeCom's limits: a button key ≤1024 bytes, a task id ≤128 bytes of [0-9A-Za-z_-@].
KEY_MAX_BYTES = 1024
TASK_ID_MAX_BYTES = 128
_CASE_NO = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_TASK_ID = re.compile(r"^[0-9A-Za-z_\-@]{1,128}$")


class BadCardKey(ValueError):
    """A button key or task id that is not one of ours."""


def _check_case_no(case_no: str) -> str:
    if not _CASE_NO.match(case_no or ""):
        raise BadCardKey(f"not a case number: {case_no!r}")
    return case_no


def card_button_key(action: str, case_no: str) -> str:
    """The key of a card's button: `accept:<case_no>` or `return:<case_no>`."""
    if action not in CARD_ACTIONS:
        raise BadCardKey(f"unknown card action {action!r}")
    return f"{action}:{_check_case_no(case_no)}"


def parse_card_button_key(key: str) -> tuple[str, str]:
    """(action, case_no) of a button key; raises BadCardKey for anything else."""
    if len((key or "").encode()) > KEY_MAX_BYTES:
        raise BadCardKey("key too long")
    action, sep, case_no = (key or "").partition(":")
    if not sep or action not in CARD_ACTIONS:
        raise BadCardKey(f"not a card button key: {key!r}")
    return action, _check_case_no(case_no)


def card_task_id(case_no: str, n: int) -> str:
    """The task id of the n-th card sent for a case (each send needs a new one)."""
    if n < 0:
        raise BadCardKey("n must be ≥ 0")
    task_id = f"case-{_check_case_no(case_no)}-{n}"
    if len(task_id.encode()) > TASK_ID_MAX_BYTES:
        raise BadCardKey("task id too long")
    return task_id


def parse_card_task_id(task_id: str) -> tuple[str, int]:
    """(case_no, n) of a task id of ours; raises BadCardKey for anything else."""
    if not _TASK_ID.match(task_id or "") or not task_id.startswith("case-"):
        raise BadCardKey(f"not a case card task id: {task_id!r}")
    case_no, sep, n = task_id[len("case-") :].rpartition("-")
    if not sep or not n.isdigit():
        raise BadCardKey(f"not a case card task id: {task_id!r}")
    return _check_case_no(case_no), int(n)
