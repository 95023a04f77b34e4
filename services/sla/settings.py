"""SLA's settings: the shared base, the agreements sla is part of, and its own options."""

from shared.settings import ServiceSettings, SlaPolicyFile


class SlaSettings(ServiceSettings, SlaPolicyFile):
    sla_tick_interval_s: float = 0.5
    sla_fire_batch: int = 1000
    sla_fire_workers: int = 2
