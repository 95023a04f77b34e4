"""Pure SLA rules: when a stage's deadline falls."""

from datetime import datetime, timedelta

from shared.settings import Settings


def acknowledgement_due(*, dispatched_at: datetime, priority: str, settings: Settings) -> datetime:
    """The department must acknowledge (接单) an urgent case within 10 minutes by default."""
    minutes = settings.sla_ack_minutes_urgent if priority == "urgent" else settings.sla_ack_minutes_normal
    return dispatched_at + timedelta(minutes=minutes)
