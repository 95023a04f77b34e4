"""SLA's settings: the shared base, the agreements sla is part of, and its own options."""

from shared.settings import ServiceSettings, SlaPolicyFile


class SlaSettings(ServiceSettings, SlaPolicyFile):
    sla_tick_interval_s: float = 0.5
    sla_fire_batch: int = 1000
    sla_fire_workers: int = 2
    # How often the business metrics (三率 by department and town, this month) are recomputed.
    analytics_metrics_interval_s: float = 60.0
