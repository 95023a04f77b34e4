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

    # Base URL of the WeCom API (the real one in production, the local fake in development).
    wecom_base_url: str = "https://qyapi.weixin.qq.com"
    notify_max_attempts: int = 5
    notify_retry_base_s: float = 1.0

    responsibility_list_path: Path = PROJECT_ROOT / "shared" / "data" / "taxonomy.yaml"
    directory_path: Path = PROJECT_ROOT / "shared" / "data" / "directory.yaml"
    sla_ack_minutes_urgent: int = 10
    sla_ack_minutes_normal: int = 60
    sla_tick_interval_s: float = 0.5

    def topic(self, name: str) -> str:
        """The physical topic name for a registry topic name."""
        return f"{self.topic_prefix}{name}"

    def consumer_group(self) -> str:
        """Each service instance (and each dispatch level/jurisdiction) consumes as its own group."""
        return f"{self.topic_prefix}{self.service_name}"
