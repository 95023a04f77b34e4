"""One settings model for every service; values come from GRIDLINK_* environment variables.

Settings are built once (in `create_app` or a test) and passed in, never read at import time,
so a test can point a fresh app at fresh servers.
"""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDLINK_", extra="ignore")

    service_name: str = "gridlink"
    # Jurisdiction this instance serves (6-digit county code of the demo county by default).
    jurisdiction_code: str = "330727"
    jurisdiction_level: str = "county"

    database_url: str = "postgresql://gridlink@127.0.0.1:15432/gridlink"
    db_pool_min: int = 1
    db_pool_max: int = 5

    kafka_bootstrap: str = "127.0.0.1:19092"
    # Prepended to every topic name and consumer group: lets tests (and tenants) share one cluster.
    topic_prefix: str = ""
    consumer_max_attempts: int = Field(default=3, ge=1)
    consumer_retry_backoff_s: float = 0.2
    outbox_poll_interval_s: float = 0.1

    # Keyed hash for looking up reporters by phone without storing the number in clear.
    phone_hash_key: str = "local-development-only"

    minio_endpoint: str = "127.0.0.1:19000"
    minio_access_key: str = "gridlink"
    minio_secret_key: str = "gridlink-secret"
    minio_secure: bool = False
    media_bucket: str = "gridlink-media"
    media_max_bytes: int = 20 * 1024 * 1024
    # Per-kind limits; uploads larger than media_max_bytes go through a presigned PUT instead.
    media_image_max_bytes: int = 20 * 1024 * 1024
    media_video_max_bytes: int = 200 * 1024 * 1024
    media_audio_max_bytes: int = 10 * 1024 * 1024
    # Decompression-bomb limit: images with more pixels are rejected before they are decoded.
    media_image_max_pixels: int = 50_000_000
    media_presign_put_expiry_s: int = 15 * 60
    media_presign_get_expiry_s: int = 5 * 60
    # How long originals are kept after their last upload; 0 keeps them forever.
    media_retention_days_image: int = 5 * 365
    media_retention_days_video: int = 2 * 365
    media_retention_days_audio: int = 2 * 365
    # EXIF checks against the report: farther or older than this is flagged (never rejected).
    media_exif_max_distance_m: float = 2000.0
    media_exif_max_age_hours: float = 72.0
    media_housekeeping_interval_s: float = 60.0
    # Hosts media may fetch report photos from (WeChat's picture CDN); anything else is refused.
    media_fetch_hosts: list[str] = ["mmbiz.qpic.cn", "wework.qpic.cn", "p.qpic.cn"]
    media_fetch_timeout_s: float = 10.0

    # Base URL of the WeCom API (the real one in production, the local fake in development).
    wecom_base_url: str = "https://qyapi.weixin.qq.com"
    notify_max_attempts: int = 5
    notify_retry_base_s: float = 1.0
    # Our side of each group robot's limit (WeCom allows 20 a minute), so its 45009 stays rare.
    notify_robot_per_minute: int = 20
    notify_delivery_concurrency: int = 64
    notify_delivery_batch: int = 200
    # A claimed notification whose sender died is retried after this lease.
    notify_lease_s: float = 60.0
    notify_groups_path: Path = PROJECT_ROOT / "shared" / "data" / "groups.csv"
    # Inbound callbacks older than this (or whose nonce was seen within it) are refused as replays.
    notify_callback_max_age_s: int = 300
    # WeCom self-built application (企业微信自建应用): sending and its callback. The defaults are
    # what the local fake accepts (the AES keys are WeChat's published samples): set real ones in production.
    wecom_corp_id: str = "ww-gridlink-local"
    wecom_corp_secret: str = "local-development-only"
    wecom_agent_id: int = 1000002
    wecom_callback_token: str = "gridlink-local"
    wecom_callback_aes_key: str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    # WeCom AI bot (智能机器人): the official way messages @-mentioning it in groups reach us.
    wecom_aibot_token: str = "gridlink-local"
    wecom_aibot_aes_key: str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
    # WeChat official account (公众号): template messages to reporters and its callback.
    wechat_base_url: str = "https://api.weixin.qq.com"
    wechat_app_id: str = "wx-gridlink-local"
    wechat_app_secret: str = "local-development-only"
    wechat_callback_token: str = "gridlink-local"
    wechat_callback_aes_key: str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
    wechat_template_case_update: str = "gridlink-case-update"
    # "template" (模板消息) or "subscribe" (订阅消息, needs each reader's consent) for reporters.
    wechat_reporter_message: str = "template"
    # SMS gateway (short messages to reporters without WeChat).
    sms_base_url: str = "http://127.0.0.1:18090"
    sms_sign_name: str = "网格通"
    sms_template_case_update: str = "SMS_CASE_UPDATE"
    sms_template_query_code: str = "SMS_QUERY_CODE"

    responsibility_list_path: Path = PROJECT_ROOT / "shared" / "data" / "taxonomy.yaml"
    directory_path: Path = PROJECT_ROOT / "shared" / "data" / "directory.yaml"
    # The county map (divisions, grids, grid workers, residents' groups): intake places reports on it, make seed loads it.
    county_map_path: Path = PROJECT_ROOT / "shared" / "data" / "county.geojson"
    sla_tick_interval_s: float = 0.5
    sla_policy_path: Path = PROJECT_ROOT / "shared" / "data" / "sla_policies.yaml"
    sla_fire_batch: int = 1000
    sla_fire_workers: int = 2

    # Division codes that run their own dispatch instance (the county always does); every
    # instance must be given the same list so they agree on who owns which case.
    dispatch_centres: list[str] = []
    dispatch_auto_verify_days: float = 3.0  # resolved cases nobody rated are verified after this
    dispatch_auto_verify_interval_s: float = 60.0
    recurrence_days: int = 30  # the same problem at the same place within this is 回潮
    recurrence_distance_m: float = 100.0

    # Origins whose pages may call this service from a browser (CORS); none by default.
    cors_origins: list[str] = []

    # HS256 key for bearer tokens; the dev issuer endpoint exists only when enabled (make up).
    auth_jwt_secret: str = "local-development-only"
    auth_dev_issuer: bool = False

    # Intake and triage (issue 5).
    triage_training_path: Path = PROJECT_ROOT / "shared" / "data" / "triage_training.tsv"
    triage_lexicon_path: Path = PROJECT_ROOT / "shared" / "data" / "triage_lexicon.yaml"
    # Below this confidence a report goes to manual triage at the grid centre instead of a guess.
    triage_min_confidence: float = Field(default=0.10, ge=0, le=1)
    # How often each intake replica picks up corrections other replicas stored.
    triage_corrections_poll_s: float = 5.0
    # 一事多报: a report this close (and this recent) to an open case of its category joins it.
    # Photos sent with a report (multipart) wait here until media has taken them in.
    intake_incoming_bucket: str = "gridlink-incoming"
    intake_max_photos: int = 9
    intake_duplicate_distance_m: float = 50.0
    intake_duplicate_window_hours: float = 72.0
    # Key for encrypting reporter phones (AES-GCM); keep it apart from phone_hash_key in production.
    phone_encryption_key: str = "local-development-only"
    # Public endpoints (H5, 我要查询, Open311): requests per client IP per minute, reports per phone per hour.
    intake_rate_limit_ip_per_minute: int = 30
    intake_rate_limit_phone_per_hour: int = 10
    # Behind a reverse proxy every client has the proxy's address: then trust its X-Forwarded-For.
    intake_trust_forwarded_for: bool = False
    # Open311 api_key values allowed to POST service requests.
    intake_open311_api_keys: list[str] = ["local-development-only"]
    # WeChat messages from one sender in one group within this window become one report.
    intake_message_window_s: float = 180.0
    intake_message_tick_s: float = 1.0
    # One-time SMS codes for 我要查询 by phone: lifetime and wrong tries allowed.
    intake_query_code_ttl_s: int = 300
    intake_query_code_max_attempts: int = 5

    def topic(self, name: str) -> str:
        """The physical topic name for a registry topic name."""
        return f"{self.topic_prefix}{name}"

    def consumer_group(self) -> str:
        """Each service instance (and each dispatch level/jurisdiction) consumes as its own group."""
        if self.service_name == "dispatch":
            return f"{self.topic_prefix}dispatch-{self.jurisdiction_code}"
        return f"{self.topic_prefix}{self.service_name}"
