"""SLA's settings: the shared base, the agreements sla is part of, and its own options."""

from pathlib import Path

from shared.settings import PROJECT_ROOT, CountyMapFile, ResponsibilityListFile, ServiceSettings, SlaPolicyFile


# The responsibility list and the county map name departments, categories and divisions in exports.
class SlaSettings(ServiceSettings, SlaPolicyFile, ResponsibilityListFile, CountyMapFile):
    sla_tick_interval_s: float = 0.5
    sla_fire_batch: int = 1000
    sla_fire_workers: int = 2
    # The official holidays and 调休 per year (the State Council's notices); admins add years through the API.
    sla_holidays_path: Path = PROJECT_ROOT / "shared" / "data" / "holidays.yaml"
    # How often each replica re-reads the years admins entered (another replica may have taken the change).
    sla_calendar_refresh_s: float = 60.0
    # How often the business metrics (三率 by department and town, this month) are recomputed.
    analytics_metrics_interval_s: float = 60.0
