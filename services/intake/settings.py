"""Intake's settings: the shared base, the agreements intake is part of, and its own options."""

from pathlib import Path

from pydantic import Field

from shared.settings import (
    PROJECT_ROOT,
    CountyMapFile,
    ImageMaxBytes,
    IncomingPhotosBucket,
    ObjectStoreServer,
    PersonalDataRetention,
    PhoneEncryptionKey,
    ResponsibilityListFile,
    ServiceSettings,
    secret,
)


class IntakeSettings(
    ServiceSettings,
    ObjectStoreServer,
    PhoneEncryptionKey,
    PersonalDataRetention,
    ResponsibilityListFile,
    IncomingPhotosBucket,
    ImageMaxBytes,
    CountyMapFile,
):
    # Keyed hash for looking up reporters by phone without storing the number in clear.
    phone_hash_key: str = secret("local-development-only")

    # Intake and triage (issue 5).
    # One file per source style (and phrases.txt); heldout/ is never trained on (issue 17).
    triage_training_dir: Path = PROJECT_ROOT / "shared" / "data" / "triage"
    triage_lexicon_path: Path = PROJECT_ROOT / "shared" / "data" / "triage_lexicon.yaml"
    # Below this confidence a report goes to manual triage at the grid centre instead of a guess.
    # Confidences are calibrated (issue 17): a report triage is less than this sure of goes to a person.
    triage_min_confidence: float = Field(default=0.40, ge=0, le=1)
    # How often each intake replica picks up corrections other replicas stored.
    triage_corrections_poll_s: float = 5.0
    intake_max_photos: int = 9
    # 一事多报: a report this close (and this recent) to an open case of its category joins it.
    intake_duplicate_distance_m: float = 50.0
    intake_duplicate_window_hours: float = 72.0
    # Public endpoints (H5, 我要查询, Open311): requests per client IP per minute, reports per phone per hour.
    intake_rate_limit_ip_per_minute: int = 30
    intake_rate_limit_phone_per_hour: int = 10
    # The reverse proxies (ingress) in front of intake, as addresses or CIDR blocks: behind them every
    # client has a proxy's address, so the client is the first X-Forwarded-For hop, from the right,
    # that is not one of them. Empty: X-Forwarded-For is ignored (anyone can write it).
    intake_trusted_proxies: list[str] = []
    # Open311 api_key values allowed to POST service requests.
    intake_open311_api_keys: list[str] = secret(["local-development-only"])
    # WeChat messages from one sender in one group within this window become one report.
    intake_message_window_s: float = 180.0
    intake_message_tick_s: float = 1.0
    # One-time SMS codes for 我要查询 by phone: lifetime and wrong tries allowed.
    intake_query_code_ttl_s: int = 300
    intake_query_code_max_attempts: int = 5
    # A reporter_phone is whatever someone typed, so code requests must not become a way to text a
    # stranger at will (issue "SMS hardening"): at most one code per phone per cooldown, a daily cap
    # per phone (Beijing day), and a service-wide budget of codes texted per hour.
    intake_query_code_cooldown_s: int = Field(default=60, ge=0)
    intake_query_code_daily_cap: int = Field(default=5, ge=1)
    intake_sms_budget_per_hour: int = Field(default=300, ge=1)
    # After this many code requests or wrong codes for one phone, or from one address, within the
    # window, 我要查询 asks for a solved image CAPTCHA (drawn here; no third-party service). An address
    # is allowed more: residents share addresses behind carrier and office NAT.
    intake_captcha_after_attempts_per_phone: int = Field(default=3, ge=0)
    intake_captcha_after_attempts_per_ip: int = Field(default=10, ge=0)
    intake_captcha_window_s: int = Field(default=3600, ge=60)
    intake_captcha_ttl_s: int = Field(default=300, ge=30)
