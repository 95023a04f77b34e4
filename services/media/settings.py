"""Media's settings: the shared base, the agreements media is part of, and its own options."""

from pydantic import Field

from shared.settings import ImageMaxBytes, IncomingPhotosBucket, ObjectStoreServer, ServiceSettings


class MediaSettings(ServiceSettings, ObjectStoreServer, IncomingPhotosBucket, ImageMaxBytes):
    media_bucket: str = "gridlink-media"
    media_max_bytes: int = 20 * 1024 * 1024
    # Per-kind limits (images: media_image_max_bytes, shared with intake); uploads larger than
    # media_max_bytes go through a presigned PUT instead.
    media_video_max_bytes: int = 200 * 1024 * 1024
    media_audio_max_bytes: int = 10 * 1024 * 1024
    # Decompression-bomb limit: images with more pixels are rejected before they are decoded.
    media_image_max_pixels: int = 50_000_000
    # Images decoded at once by one process (uploads, derived copies, comparisons); the rest wait.
    # Each takes up to ~3 bytes per pixel decoded: size the pod's memory limit to this times that.
    media_decode_concurrency: int = Field(default=2, ge=1)
    media_presign_put_expiry_s: int = 15 * 60
    media_presign_get_expiry_s: int = 5 * 60
    # The link to a resolved case's 整改前后对比 image in media.comparison_ready: notify fetches it
    # for group robots at once, and links it for official-account readers (S3 allows 7 days at most).
    media_comparison_link_expiry_s: int = 7 * 24 * 3600
    # How long originals are kept after their last upload; 0 keeps them forever.
    media_retention_days_image: int = 5 * 365
    media_retention_days_video: int = 2 * 365
    media_retention_days_audio: int = 2 * 365
    # EXIF checks against the report: farther or older than this is flagged (never rejected).
    media_exif_max_distance_m: float = 2000.0
    media_exif_max_age_hours: float = 72.0
    # Roles whose photos must carry EXIF (a capture time) to be attached, e.g. ["after"]: 办结 evidence
    # taken with the camera, not a screenshot or a picture passed around. Empty: flag, never refuse.
    media_exif_required_for: list[str] = []
    # A photo whose perceptual hash (64-bit dHash) differs from another case's photo, or an "after"
    # photo from its case's "before", in at most this many bits is flagged reused_photo.
    media_reused_photo_max_distance: int = 6
    media_housekeeping_interval_s: float = 60.0
    # Hosts media may fetch report photos from (WeChat's picture CDN); anything else is refused.
    media_fetch_hosts: list[str] = ["mmbiz.qpic.cn", "wework.qpic.cn", "p.qpic.cn"]
    media_fetch_timeout_s: float = 10.0
