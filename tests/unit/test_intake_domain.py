import pytest
from pydantic import ValidationError

from services.intake.domain import ReportIn, mask_phone, phone_hash


def test_phone_is_masked_and_hashed_with_a_key():
    assert mask_phone("13812341234") == "138****1234"
    assert phone_hash("13812341234", "k1") == phone_hash("13812341234", "k1")
    assert phone_hash("13812341234", "k1") != phone_hash("13812341234", "k2")
    assert b"13812341234" not in phone_hash("13812341234", "k1")


@pytest.mark.parametrize("body", [
    {"description": ""},
    {"description": "x" * 2001},
    {"description": "井盖坏了", "lat": 91, "lng": 120},
    {"description": "井盖坏了", "lat": 29.1},
    {"description": "井盖坏了", "reporter_phone": "12345"},
    {"description": "井盖坏了", "channel": "fax"},
])
def test_bad_reports_are_refused(body):
    with pytest.raises(ValidationError):
        ReportIn.model_validate(body)


def test_description_is_trimmed():
    assert ReportIn(description="  井盖坏了 ").description == "井盖坏了"
