from datetime import datetime, timedelta, timezone

from services.sla.domain import acknowledgement_due
from shared.settings import Settings


def test_urgent_cases_acknowledge_in_ten_minutes():
    at = datetime(2026, 11, 24, 9, 0, tzinfo=timezone.utc)
    settings = Settings()
    assert acknowledgement_due(dispatched_at=at, priority="urgent", settings=settings) == at + timedelta(minutes=10)
    assert acknowledgement_due(dispatched_at=at, priority="normal", settings=settings) == at + timedelta(
        minutes=settings.sla_ack_minutes_normal)
