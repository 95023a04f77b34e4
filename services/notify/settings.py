"""Notify's settings: the shared base, the agreements notify is part of, and its own options."""

from pathlib import Path

from shared.settings import (
    PROJECT_ROOT,
    CountyMapFile,
    ImageMaxBytes,
    IncomingPhotosBucket,
    ObjectStoreServer,
    PersonalDataRetention,
    PhoneEncryptionKey,
    ServiceSettings,
    SlaPolicyFile,
    secret,
)


class NotifySettings(
    ServiceSettings,
    PhoneEncryptionKey,
    PersonalDataRetention,
    SlaPolicyFile,
    CountyMapFile,
    # Photos staff send the AI bot with 办结 are decrypted and parked where media takes photos in.
    ObjectStoreServer,
    IncomingPhotosBucket,
    ImageMaxBytes,
):
    # Departments' WeCom robots and the people to @ in them.
    directory_path: Path = PROJECT_ROOT / "shared" / "data" / "directory.yaml"

    # Base URL of the WeCom API (the real one in production, the local fake in development).
    wecom_base_url: str = "https://qyapi.weixin.qq.com"
    notify_max_attempts: int = 5
    notify_retry_base_s: float = 1.0
    # Our side of each group robot's limit (WeCom allows 20 a minute), so its 45009 stays rare.
    notify_robot_per_minute: int = 20
    # 派单 digests: a robot sends 派单 one by one while they fit in the slots beyond `reserve`;
    # past that, its group's queued 派单 go out merged: a digest as soon as it is full, a partial
    # one once its oldest 派单 has waited `max_wait`.
    notify_digest: bool = True
    notify_digest_reserve: int = 15
    notify_digest_max_wait_s: float = 5.0
    # How many queued 派单 of the groups in a batch it takes along (a few full digests' worth).
    notify_digest_queue_limit: int = 1000
    notify_delivery_concurrency: int = 64
    notify_delivery_batch: int = 200
    # A claimed notification whose sender died is retried after this lease.
    notify_lease_s: float = 60.0
    # A template message not confirmed (TEMPLATESENDJOBFINISH "success") within this is taken over
    # by the reporter's next channel (SMS), as one that failed is.
    notify_receipt_timeout_s: float = 600.0
    # Where residents open intake's H5 pages: the 回访 message links to its one-tap 办结 confirmation.
    notify_h5_base_url: str = "http://127.0.0.1:8001"
    # Where phones reach the console (its public base URL): 派单 messages and cards link each case's
    # mobile work page, <it>/m/cases/<case number>. Empty: no link.
    notify_console_public_url: str = ""
    notify_groups_path: Path = PROJECT_ROOT / "shared" / "data" / "groups.csv"
    # Inbound callbacks older than this (or whose nonce was seen within it) are refused as replays.
    notify_callback_max_age_s: int = 300
    # How long fetching a photo sent to the AI bot may take (its URL is valid 5 minutes).
    notify_photo_fetch_timeout_s: float = 4.0
    # WeCom self-built application (企业微信自建应用): sending and its callback. The defaults are
    # what the local fake accepts (the AES keys are WeChat's published samples): set real ones in production.
    wecom_corp_id: str = "ww-gridlink-local"
    wecom_corp_secret: str = secret("local-development-only")
    wecom_agent_id: int = 1000002
    wecom_callback_token: str = secret("gridlink-local", min_bytes=16)
    wecom_callback_aes_key: str = secret("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", min_bytes=43)
    # WeCom AI bot (智能机器人): the official way messages @-mentioning it in groups reach us.
    wecom_aibot_token: str = secret("gridlink-local", min_bytes=16)
    wecom_aibot_aes_key: str = secret("jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", min_bytes=43)
    # WeChat official account (公众号): template messages to reporters and its callback.
    wechat_base_url: str = "https://api.weixin.qq.com"
    wechat_app_id: str = "wx-gridlink-local"
    wechat_app_secret: str = secret("local-development-only")
    wechat_callback_token: str = secret("gridlink-local", min_bytes=16)
    # 安全模式: the official account sends every message encrypted; a plaintext one is refused as forged.
    # Only an account configured in 兼容/明文模式 turns this off.
    wechat_safe_mode: bool = True
    wechat_callback_aes_key: str = secret("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", min_bytes=43)
    wechat_template_case_update: str = "gridlink-case-update"
    # "template" (模板消息) or "subscribe" (订阅消息, needs each reader's consent) for reporters.
    wechat_reporter_message: str = "template"
    # SMS gateway (short messages to reporters without WeChat).
    sms_base_url: str = "http://127.0.0.1:18090"
    sms_sign_name: str = "网格通"
    sms_template_case_update: str = "SMS_CASE_UPDATE"
    sms_template_query_code: str = "SMS_QUERY_CODE"
