"""Pure media rules: what a file is (judged by its bytes), whether it may be stored, where it is
stored, and what its EXIF evidence says about the report it belongs to. No I/O here."""

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from uuid import UUID

# Phones in China write EXIF times as local wall-clock time, mostly without an offset tag.
CHINA_STANDARD_TIME = timezone(timedelta(hours=8), "CST")

ROLES = ("before", "after")

CONTENT_TYPES = {
    "image/jpeg": "image",
    "image/png": "image",
    "image/webp": "image",
    "image/heic": "image",
    "video/mp4": "video",
    "audio/amr": "audio",
    "audio/mpeg": "audio",
}

KIND_NAMES = {"image": "图片", "video": "视频", "audio": "语音"}

# Names clients commonly send for the types above.
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "image/heif": "image/heic",
    "audio/mp3": "audio/mpeg",
    "audio/amr-wb": "audio/amr",
    "audio/x-amr": "audio/amr",
}

# Types that make no claim about the content (WeChat downloads arrive as octet-stream).
_NO_CLAIM = {"", "application/octet-stream", "binary/octet-stream"}

# ISO-BMFF files all start with an 'ftyp' box; its major brand tells HEIC photos from MP4 videos
# (and from AVIF, QuickTime and the rest, which are not accepted).
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"}
_MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"M4V ",
    b"dash",
    b"3gp4",
    b"3gp5",
    b"3gp6",
    b"3g2a",
}

SNIFF_BYTES = 32

# reason → (HTTP status, title). Titles are shown to reporters and staff, hence Chinese.
REJECTIONS = {
    "empty": (422, "文件为空"),
    "too-large": (413, "文件过大"),
    "unsupported-type": (415, "不支持的文件类型"),
    "type-mismatch": (415, "声明的类型与文件内容不符"),
    "corrupt": (422, "文件已损坏或不完整"),
    "decompression-bomb": (422, "图片像素过多"),
    "size-mismatch": (422, "上传的文件大小与声明不符"),
    "sha256-mismatch": (422, "上传的文件校验值与声明不符"),
    "upload-expired": (410, "上传已过期"),
}

# Evidence flags: a photo is flagged for a reviewer, never rejected, because EXIF can be missing,
# wrong or legitimately different (a photo taken on the way, a phone with a wrong clock).
FLAG_FAR_FROM_REPORT = "far_from_report"
FLAG_TAKEN_LONG_BEFORE_REPORT = "taken_long_before_report"
FLAG_TAKEN_BEFORE_REPORT = "taken_before_report"
# Nearly the same picture as a photo of another case, or an "after" photo that is the case's own
# "before" (by perceptual hash, so a resized or recompressed copy is caught too).
FLAG_REUSED_PHOTO = "reused_photo"

FLAG_TEXT = {
    FLAG_FAR_FROM_REPORT: "拍摄地点距上报位置过远",
    FLAG_TAKEN_LONG_BEFORE_REPORT: "拍摄时间远早于上报时间",
    FLAG_TAKEN_BEFORE_REPORT: "整改后照片的拍摄时间早于上报时间",
    FLAG_REUSED_PHOTO: "疑似重复使用的照片（与其他案件或本案件整改前的照片几乎相同）",
}

HASH_BITS = 64


def informative_hash(bits: int) -> int | None:
    """The dHash of a picture with something in it; None for a featureless one (a flat colour, a
    black frame), whose hash is (nearly) all zeros or ones and would match every other such."""
    return bits if 4 <= bits.bit_count() <= HASH_BITS - 4 else None


def hamming(a: int, b: int) -> int:
    """How many of the two 64-bit hashes' bits differ (0: the same picture to the eye)."""
    return ((a ^ b) & (2**HASH_BITS - 1)).bit_count()


def signed64(bits: int) -> int:
    """An unsigned 64-bit hash as PostgreSQL's bigint holds it (two's complement, same bits)."""
    return bits - 2**HASH_BITS if bits >= 2 ** (HASH_BITS - 1) else bits


class Rejection(Exception):
    """An upload that may not be stored; `reason` is one of REJECTIONS, `detail` is for people."""

    def __init__(self, reason: str, detail: str):
        assert reason in REJECTIONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail

    @property
    def status(self) -> int:
        return REJECTIONS[self.reason][0]

    @property
    def title(self) -> str:
        return REJECTIONS[self.reason][1]


@dataclass(frozen=True)
class SizeLimits:
    image: int
    video: int
    audio: int

    def for_kind(self, kind: str) -> int:
        return getattr(self, kind)


@dataclass(frozen=True)
class Checked:
    """What an upload was found to be by its bytes."""

    content_type: str
    kind: str


def sniff_content_type(head: bytes) -> str | None:
    """The media type by magic bytes, or None when it is not an accepted kind."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":
        if head[8:12] in _HEIC_BRANDS:
            return "image/heic"
        return "video/mp4" if head[8:12] in _MP4_BRANDS else None
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return "audio/mpeg"
    return None


def kind_of(content_type: str) -> str:
    """image, video or audio, for an accepted content type."""
    return CONTENT_TYPES[content_type]


def normalize_declared_type(declared: str | None) -> str:
    """A client's Content-Type without parameters, lower-cased, aliases resolved ('' when absent)."""
    value = (declared or "").split(";")[0].strip().lower()
    return _ALIASES.get(value, value)


def check_declared_type(declared: str | None, detected: str) -> None:
    """The declared type may be vague (octet-stream) or name a sibling format (a PNG sent as
    image/jpeg, which phones do), but it may not claim another kind of thing (text/html, audio)."""
    value = normalize_declared_type(declared)
    if value in _NO_CLAIM:
        return
    declared_kind = value.split("/")[0]
    if declared_kind != kind_of(detected):
        raise Rejection("type-mismatch", f"声明为 {value}，但文件内容是 {detected}。")


def check_upload(*, head: bytes, size: int, declared_type: str | None, limits: SizeLimits) -> Checked:
    """Judge an upload by its first bytes and its size; raises Rejection."""
    if size == 0:
        raise Rejection("empty", "文件没有内容。")
    detected = sniff_content_type(head[:SNIFF_BYTES])
    if detected is None:
        raise Rejection("unsupported-type", "只接受 JPEG、PNG、WebP、HEIC 图片，MP4 视频，AMR、MP3 语音。")
    check_declared_type(declared_type, detected)
    kind = kind_of(detected)
    check_size(kind=kind, size=size, limits=limits)
    return Checked(content_type=detected, kind=kind)


def check_size(*, kind: str, size: int, limits: SizeLimits) -> None:
    """Each kind has its own size limit."""
    limit = limits.for_kind(kind)
    if size > limit:
        raise Rejection("too-large", f"{KIND_NAMES[kind]}最大 {format_bytes(limit)}，此文件 {format_bytes(size)}。")


def format_bytes(size: int) -> str:
    """Sizes as people read them: 20 MB, 512 KB, 300 字节."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    if size >= 1024:
        return f"{size / 1024:g} KB"
    return f"{size} 字节"


def check_pixels(*, width: int, height: int, max_pixels: int) -> None:
    """A small file that claims a huge canvas would exhaust memory when decoded: refuse it first."""
    if width * height > max_pixels:
        raise Rejection("decompression-bomb", f"图片 {width}×{height} 像素，超过上限 {max_pixels} 像素。")


_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class UploadRequest:
    """A validated request for a presigned upload."""

    content_type: str
    kind: str
    size_bytes: int
    sha256: str


def check_upload_request(*, content_type: str, size_bytes: int, sha256: str, limits: SizeLimits) -> UploadRequest:
    """A presigned upload must say what it will send, so the completed object can be checked."""
    declared = normalize_declared_type(content_type)
    if declared not in CONTENT_TYPES:
        raise Rejection(
            "unsupported-type", f"不支持 {declared or '未声明的类型'}；只接受 JPEG、PNG、WebP、HEIC、MP4、AMR、MP3。"
        )
    if size_bytes <= 0:
        raise Rejection("empty", "文件没有内容。")
    kind = kind_of(declared)
    check_size(kind=kind, size=size_bytes, limits=limits)
    digest = sha256.strip().lower()
    if not _SHA256.match(digest):
        raise Rejection("sha256-mismatch", "sha256 须为 64 位十六进制。")
    return UploadRequest(content_type=declared, kind=kind, size_bytes=size_bytes, sha256=digest)


def check_completed_size(*, expected: int, actual: int) -> None:
    """A PUT cut short (or a different file) does not count; checked before the object is read."""
    if actual != expected:
        raise Rejection("size-mismatch", f"声明 {expected} 字节，实际收到 {actual} 字节，上传可能中断。")


def check_completed_sha256(*, expected: str, actual: str) -> None:
    """The object must be exactly the announced file."""
    if actual != expected:
        raise Rejection("sha256-mismatch", "文件内容的 SHA-256 与声明不一致。")


def completion_deadline(*, created_at: datetime, put_expiry_s: int) -> datetime:
    """A PUT may start just before its URL expires and run a while, so completion gets twice as long."""
    return created_at + timedelta(seconds=2 * put_expiry_s)


def object_key(sha256_hex: str) -> str:
    """Objects are stored once under their content hash."""
    return f"sha256/{sha256_hex[:2]}/{sha256_hex}"


def public_copy_key(sha256_hex: str) -> str:
    """The stripped (no EXIF) copy of an image, safe to show on pages."""
    return f"public/{sha256_hex[:2]}/{sha256_hex}.jpg"


def thumbnail_key(sha256_hex: str) -> str:
    return f"thumb/{sha256_hex[:2]}/{sha256_hex}.jpg"


def staging_key(upload_id: UUID) -> str:
    """Where a presigned PUT lands; nothing there counts until the upload is completed."""
    return f"uploads/{upload_id}"


def comparison_key(*, case_id: UUID, before_sha256: str, after_sha256: str) -> str:
    """Named by the pair it shows, so generating it again for the same photos changes nothing."""
    return f"comparisons/{case_id}/{before_sha256[:16]}-{after_sha256[:16]}.jpg"


def retain_until(*, kind: str, stored_at: datetime, retention_days: dict[str, int]) -> datetime | None:
    """When an original may be deleted; None keeps it forever (a retention of 0 days)."""
    days = retention_days[kind]
    return stored_at + timedelta(days=days) if days > 0 else None


def parse_exif_datetime(value: str | None, offset: str | None = None) -> datetime | None:
    """EXIF 'YYYY:MM:DD HH:MM:SS' (+ optional '+08:00' offset tag) as an aware datetime."""
    if not value:
        return None
    try:
        naive = datetime.strptime(value.strip().strip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    tz = CHINA_STANDARD_TIME
    match = re.match(r"^([+-])(\d{2}):(\d{2})$", (offset or "").strip().strip("\x00"))
    if match:
        sign = 1 if match.group(1) == "+" else -1
        tz = timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    return naive.replace(tzinfo=tz)


def gps_degrees(dms, ref: str | None) -> float | None:
    """EXIF (degrees, minutes, seconds) rationals and an N/S/E/W reference as signed degrees."""
    try:
        degrees, minutes, seconds = (float(part) for part in dms)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    if any(math.isnan(part) for part in (degrees, minutes, seconds)):
        return None
    value = degrees + minutes / 60 + seconds / 3600
    return -value if (ref or "").strip("\x00").upper() in ("S", "W") else value


def distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lng2 - lng1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6_371_000 * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class ReportContext:
    """Where and when the case was reported (from report.submitted)."""

    lat: float | None
    lng: float | None
    submitted_at: datetime


def evidence_flags(
    *,
    role: str,
    captured_at: datetime | None,
    latitude: float | None,
    longitude: float | None,
    report: ReportContext,
    max_distance_m: float,
    max_age: timedelta,
) -> list[str]:
    """Which evidence checks a photo fails against its report. Missing EXIF is no flag: WeChat
    strips it from every compressed photo, so its absence says nothing."""
    flags = []
    # Report positions are picked on a map or typed as an address (intake converts GCJ-02 to
    # WGS-84), so they can be some hundred metres off where the phone stood: the limit is generous.
    # Spelled out (not `None not in (...)`) so the type checker sees each one is a float.
    if latitude is not None and longitude is not None and report.lat is not None and report.lng is not None:
        if distance_m(latitude, longitude, report.lat, report.lng) > max_distance_m:
            flags.append(FLAG_FAR_FROM_REPORT)
    if captured_at is not None:
        if role == "before" and captured_at < report.submitted_at - max_age:
            flags.append(FLAG_TAKEN_LONG_BEFORE_REPORT)
        if role == "after" and captured_at < report.submitted_at:
            flags.append(FLAG_TAKEN_BEFORE_REPORT)
    return flags


@dataclass(frozen=True)
class CaseAccess:
    """Whose a case is, as its latest case event says (or its report, before any case event)."""

    jurisdiction_code: str
    department_code: str | None = None
    co_department_codes: tuple[str, ...] = ()
    grid_code: str | None = None  # the case's grid, when known: a grid worker's division is a grid


def can_view_case(*, role: str, jurisdiction_code: str, department_code: str | None, case: CaseAccess) -> bool:
    """Evidence is visible to whoever may see its case, by dispatch's rule: the actor's division
    contains the case's deepest known place (its grid, else its division), and a department handler
    sees only cases its department (co-)handles. One exception: a report not yet placed in any grid
    waits for a grid worker of its division to place it (intake lists it to each of them, 待定位),
    and its photos are how they find the place, so those grid workers see them too."""
    if not (case.grid_code or case.jurisdiction_code).startswith(jurisdiction_code):
        return role == "grid_worker" and case.grid_code is None and jurisdiction_code.startswith(case.jurisdiction_code)
    if role == "handler":
        return department_code is not None and department_code in (case.department_code, *case.co_department_codes)
    return True


@dataclass(frozen=True)
class EvidenceItem:
    media_id: UUID
    role: str
    kind: str
    sha256: str
    attached_at: datetime


def latest_photo(items: list[EvidenceItem], role: str) -> EvidenceItem | None:
    """The most recently attached photo in a role."""
    photos = [i for i in items if i.role == role and i.kind == "image"]
    return max(photos, key=lambda i: i.attached_at, default=None)


def comparison_pair(items: list[EvidenceItem]) -> tuple[EvidenceItem, EvidenceItem] | None:
    """The newest before and after photos, which the comparison image shows; None without both."""
    before, after = latest_photo(items, "before"), latest_photo(items, "after")
    return (before, after) if before and after else None


def evidence_summary(items: list[EvidenceItem]) -> dict:
    """Counts per role; closing a case needs an 'after' photo (has_after_photo)."""
    return {
        "before": sum(1 for i in items if i.role == "before"),
        "after": sum(1 for i in items if i.role == "after"),
        "has_after_photo": latest_photo(items, "after") is not None,
    }


def caption(*, captured_at: datetime | None, uploaded_at: datetime) -> str:
    """The line under each side of the comparison: capture time if known, else upload time (CST)."""
    if captured_at is not None:
        return "拍摄于 " + captured_at.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M")
    return "上传于 " + uploaded_at.astimezone(CHINA_STANDARD_TIME).strftime("%Y-%m-%d %H:%M")


def exif_refusal(*, role: str, kind: str | None, captured_at, required_for) -> str | None:
    """Why a photo may not be attached in `role`, when the policy requires EXIF for that role and
    the photo carries no capture time (None: it may be attached)."""
    if role not in required_for or kind != "image" or captured_at is not None:
        return None
    name = {"before": "整改前", "after": "整改后"}.get(role, role)
    return (
        f"该照片没有拍摄信息（EXIF 拍摄时间），按规定{name}照片须为手机或相机直接拍摄的原图；"
        "请在现场重新拍摄后上传，不要使用截图或转发的图片。"
    )


STAFF_PHOTO_PREFIX = "staff/"


def staff_command_of(object_key: str) -> UUID | None:
    """The staff command an incoming photo came with (`staff/<command id>/<n>`: a 办结 photo sent to
    the WeCom AI bot, which is the case's "after" evidence), or None for a report's photo."""
    if not object_key.startswith(STAFF_PHOTO_PREFIX):
        return None
    try:
        return UUID(object_key[len(STAFF_PHOTO_PREFIX) :].split("/", 1)[0])
    except ValueError:
        return None
