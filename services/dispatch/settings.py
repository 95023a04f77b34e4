"""Dispatch's settings: the shared base, the agreements dispatch is part of, and its own options."""

from shared.settings import (
    CountyMapFile,
    DevTokenIssuer,
    ResponsibilityListFile,
    ServiceSettings,
    SlaPolicyFile,
    secret,
)


# SlaPolicyFile: staff asking 查 <编号> from WeCom are told the time their case's stage allows.
class DispatchSettings(ServiceSettings, ResponsibilityListFile, CountyMapFile, DevTokenIssuer, SlaPolicyFile):
    # Division codes that run their own dispatch instance (the county always does); every
    # instance must be given the same list so they agree on who owns which case.
    dispatch_centres: list[str] = []
    dispatch_auto_verify_days: float = 3.0  # resolved cases nobody rated are verified after this
    dispatch_auto_verify_interval_s: float = 60.0
    recurrence_days: int = 30  # the same problem at the same place within this is 回潮
    recurrence_distance_m: float = 100.0
    # Staff mobiles in the directory, kept as reporters' phones are: AES-GCM with this key, found by
    # a keyed hash with the other; dispatch's own keys (no other service reads staff mobiles yet).
    directory_mobile_encryption_key: str = secret("local-development-only")
    directory_mobile_hash_key: str = secret("local-development-only")

    def consumer_group(self) -> str:
        """Each dispatch instance (one per level/jurisdiction) consumes every event as its own group."""
        return f"{self.topic_prefix}dispatch-{self.jurisdiction_code}"
