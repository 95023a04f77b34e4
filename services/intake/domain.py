"""Pure intake rules: what a client may submit, where a report is, whether it repeats an open
case (一事多报), how phones are kept, and how WeChat messages become one report."""

import base64
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from shared.events import Rating
from shared.geo import CoordSystem, distance_m, to_wgs84
from shared.jurisdictions import County, GridMatch

MAX_DESCRIPTION_CHARS = 2000
PHONE_PATTERN = r"^1[3-9]\d{9}$"  # mainland mobile numbers
MAX_ADDRESS_CHARS = 200
# Case statuses after which a new report of the same problem is not a duplicate (it may be 回潮).
CLOSED_STATUSES = frozenset({"resolved", "verified", "closed", "cancelled", "merged"})
NO_TEXT_DESCRIPTION = "（群消息反映，仅有图片或位置，无文字说明）"


class Channel(StrEnum):
    api = "api"
    h5 = "h5"
    wechat_group = "wechat_group"
    official_account = "official_account"
    open311 = "open311"


class ReportIn(BaseModel):
    """A report as a client submits it: a place (coordinates, or at least an address) is required."""

    description: str = Field(min_length=2, max_length=MAX_DESCRIPTION_CHARS)
    category: str | None = Field(default=None, max_length=64)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    # WeChat (wx.getLocation type 'gcj02', Tencent maps) sends GCJ-02; GPS/EXIF is WGS-84.
    coord_system: CoordSystem = CoordSystem.wgs84
    address: str | None = Field(default=None, max_length=MAX_ADDRESS_CHARS)
    reporter_phone: str | None = Field(default=None, pattern=PHONE_PATTERN)
    channel: Channel = Channel.api
    media_ids: list[UUID] = Field(default=[], max_length=9)
    # When the problem was seen, if the reporter says (a grid worker's patrol log, a delayed call):
    # the first step of the seeds' loop (发现→上报) is measured from it.
    seen_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _place_is_given(self):
        if (self.lat is None) != (self.lng is None):
            raise ValueError("lat and lng must be given together")
        self.description = self.description.strip()
        self.address = (self.address or "").strip() or None
        if self.lat is None and self.address is None:
            raise ValueError("a location (lat and lng) or an address is required")
        if self.seen_at is not None:
            self.seen_at = self.seen_at.astimezone(UTC)  # events carry UTC, like every other time
            if self.seen_at > datetime.now(UTC) + timedelta(minutes=5):
                raise ValueError("seen_at is in the future: give when the problem was seen, with its time zone")
        return self


class OutsideCounty(Exception):
    """The point is not in the county this instance serves."""


@dataclass(frozen=True)
class Placement:
    lat: float | None  # WGS-84
    lng: float | None
    grid: GridMatch | None
    needs_locating: bool  # only an address: the grid worker finds the place


def division_of(village_code: str | None, *, instance_code: str) -> str:
    """The division a report is in, as its events say: its grid's village, or the division this
    instance serves while the report has no grid (a grid worker will locate it)."""
    return village_code or instance_code


@dataclass(frozen=True)
class PlacedPoint:
    """A point in the county (WGS-84) and the grid it is in."""

    lat: float
    lng: float
    grid: GridMatch


def place_point(*, lat: float, lng: float, coord_system: CoordSystem | str, county: County) -> PlacedPoint:
    """Convert to WGS-84 and find the grid; raises OutsideCounty for a point outside the county."""
    w_lat, w_lng = to_wgs84(lat, lng, coord_system)
    grid = county.find_grid(w_lat, w_lng)
    if grid is None:
        raise OutsideCounty(f"({lat}, {lng}) {CoordSystem(coord_system).value} is outside {county.name}")
    return PlacedPoint(w_lat, w_lng, grid)


def place_report(*, lat: float | None, lng: float | None, coord_system: CoordSystem | str, county: County) -> Placement:
    """Where a report is: its point placed (place_point), or nowhere yet when it came with only an
    address; raises OutsideCounty for a point outside the county."""
    if lat is None or lng is None:
        return Placement(None, None, None, needs_locating=True)
    point = place_point(lat=lat, lng=lng, coord_system=coord_system, county=county)
    return Placement(point.lat, point.lng, point.grid, needs_locating=False)


@dataclass(frozen=True)
class OpenCase:
    case_id: UUID
    case_no: str | None
    lat: float
    lng: float
    status: str


def matching_open_case(
    candidates: list[OpenCase], *, lat: float, lng: float, max_distance_m: float
) -> tuple[OpenCase, float] | None:
    """The nearest still-open case within max_distance_m of the point, with its distance."""
    best = None
    for case in candidates:
        if case.status in CLOSED_STATUSES:
            continue
        d = distance_m(lat, lng, case.lat, case.lng)
        if d <= max_distance_m and (best is None or d < best[1]):
            best = (case, d)
    return best


# Cells of the duplicate check's locks: about 1 km, far larger than the distance duplicates lie apart.
DUPLICATE_CELL_DEG = 0.01


def duplicate_lock_keys(*, category: str, lat: float, lng: float, radius_deg: float) -> list[str]:
    """What a duplicate check locks: its category in each cell that the search box around the point
    (radius_deg, and 1.2x that in longitude, as the search) touches. Two reports near enough to be
    duplicates both have the point midway between them in their boxes, so they share a key and one
    check waits for the other; reports of one category far apart no longer queue behind each other."""
    rows = range(
        math.floor((lat - radius_deg) / DUPLICATE_CELL_DEG), math.floor((lat + radius_deg) / DUPLICATE_CELL_DEG) + 1
    )
    lng_radius = radius_deg * 1.2
    cols = range(
        math.floor((lng - lng_radius) / DUPLICATE_CELL_DEG), math.floor((lng + lng_radius) / DUPLICATE_CELL_DEG) + 1
    )
    return sorted(f"{category}:{r}:{c}" for r in rows for c in cols)


def format_case_no(opened_at: datetime, seq: int) -> str:
    """The number reporters quote (20261126-000042): the day the case opened in Beijing time (a
    report at 07:00 on the 27th is the 27th's, whatever UTC says) and a counter."""
    return f"{opened_at.astimezone(CHINA):%Y%m%d}-{seq:06d}"


def new_query_code() -> str:
    """Six random digits for 我要查询 by phone."""
    return f"{secrets.randbelow(1_000_000):06d}"


def query_code_hash(code: str, *, key: str, request_id: UUID) -> bytes:
    """Keyed hash of a one-time code, bound to its request so a hash can't be replayed for another."""
    return hmac.new(key.encode(), f"query-code:{request_id}:{code}".encode(), hashlib.sha256).digest()


def confirmation_token(report_id: UUID, *, key: str) -> str:
    """The secret of a report's one-tap 办结 confirmation link (sent to its reporter alone, through
    notify): a keyed hash of the report id, so only the link's holder can confirm for that report."""
    digest = hmac.new(key.encode(), f"confirm-resolution:{report_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


def confirmation_token_valid(report_id: UUID, token: str, *, key: str) -> bool:
    return hmac.compare_digest(confirmation_token(report_id, key=key).encode(), token.encode())


CHINA = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class CodeRefusal:
    """Why a query code is not sent now, in the resident's words, and how many seconds to wait."""

    kind: str
    detail: str
    retry_after_s: int


def code_request_refusal(
    *,
    now: datetime,
    last_request_at: datetime | None,
    requests_today: int,
    texted_last_hour: int,
    oldest_texted_last_hour: datetime | None,
    cooldown_s: int,
    daily_cap: int,
    hourly_budget: int,
) -> CodeRefusal | None:
    """Whether a code request for a phone must wait. The phone's own counts are of requests, not of
    codes texted, so a phone that never reported is refused exactly like one that did (the answer
    must not tell whether it has reports). The budget protects the county's SMS bill and gateway."""
    if last_request_at is not None and now - last_request_at < timedelta(seconds=cooldown_s):
        wait = _seconds_until(now, last_request_at + timedelta(seconds=cooldown_s))
        return CodeRefusal("code-cooldown", f"获取验证码太频繁，请{wait}秒后再试。", wait)
    if requests_today >= daily_cap:
        wait = _seconds_until(now, china_day_start(now) + timedelta(days=1))
        return CodeRefusal(
            "code-daily-cap",
            f"该手机号今天获取验证码已达{daily_cap}次，请明天再试；也可以用案件编号和手机号查询。",
            wait,
        )
    if texted_last_hour >= hourly_budget:
        oldest = oldest_texted_last_hour or now
        wait = _seconds_until(now, oldest + timedelta(hours=1))
        return CodeRefusal(
            "sms-budget",
            f"短信发送繁忙，请约{max(1, round(wait / 60))}分钟后再试；也可以用案件编号和手机号查询。",
            wait,
        )
    return None


def china_day_start(at: datetime) -> datetime:
    """Midnight Beijing time of the day `at` is in: a daily cap resets when residents' day does."""
    local = at.astimezone(CHINA)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _seconds_until(now: datetime, then: datetime) -> int:
    return max(1, int((then - now).total_seconds() + 0.999))


def needs_captcha(*, attempts_from_ip: int, attempts_for_phone: int, ip_threshold: int, phone_threshold: int) -> bool:
    """After so many code requests or wrong codes from one address or for one phone (within the
    window the counts cover), a person must show they are one: a solved image CAPTCHA. An address
    gets more: many residents share one behind a carrier's or an office's NAT."""
    return attempts_from_ip >= ip_threshold or attempts_for_phone >= phone_threshold


def captcha_answer_hash(answer: str, *, key: str, captcha_id: UUID) -> bytes:
    """Keyed hash of a CAPTCHA's answer, bound to its id; only this is stored."""
    normalised = answer.strip().translate(FULL_WIDTH_DIGITS)
    return hmac.new(key.encode(), f"captcha:{captcha_id}:{normalised}".encode(), hashlib.sha256).digest()


# Phones' Chinese input methods often type full-width digits (１２); they are the same answer.
FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


# The 回访 question offers 1 满意, 2 基本满意, 3 不满意; people answer with the digit (half- or
# full-width) or the words, often with punctuation around them.
RATING_REPLIES: dict[str, Rating] = {
    "1": "satisfied",
    "满意": "satisfied",
    "非常满意": "satisfied",
    "2": "basic",
    "基本满意": "basic",
    "3": "dissatisfied",
    "不满意": "dissatisfied",
}


def rating_reply(text: str | None) -> Rating | None:
    """The answer to a pending 回访 a message is (satisfied, basic, dissatisfied), or None when it is
    anything else — which is then an ordinary message, maybe a new report."""
    if not text:
        return None
    # In a WeCom group the answer must @-mention the bot ("@网格通 3"), which the text keeps.
    word = MENTIONS.sub("", text.strip()).translate(str.maketrans("１２３", "123")).strip(" 。.!！~～、,，")
    return RATING_REPLIES.get(word)


MENTIONS = re.compile(r"^(?:@\S+\s+)+")


@dataclass(frozen=True)
class Bundle:
    """Messages from one sender in one group, merged."""

    texts: tuple[str, ...]
    media_refs: tuple[str, ...]
    lat: float | None
    lng: float | None
    coord_system: str | None
    address: str | None


def bundle_description(bundle: Bundle) -> str:
    """The report text of a bundle: its texts in order, or a placeholder when there were none."""
    text = "\n".join(t.strip() for t in bundle.texts if t and t.strip())
    return text[:MAX_DESCRIPTION_CHARS] if len(text) >= 2 else NO_TEXT_DESCRIPTION


def window_start(at: datetime, seconds: int) -> datetime:
    """Start of the fixed rate-limit window containing `at`."""
    epoch = at.timestamp()
    return datetime.fromtimestamp(epoch - epoch % seconds, tz=at.tzinfo)


def client_address(*, peer: str | None, forwarded_for: str | None, trusted_proxies: list[str]) -> str | None:
    """The client a request came from. Only a trusted proxy's X-Forwarded-For counts, read from the
    right: the first hop that is not a trusted proxy is the client (the hops left of it are whatever
    the client chose to write). Without trusted proxies the header is ignored."""
    networks = [ipaddress.ip_network(proxy, strict=False) for proxy in trusted_proxies]

    def trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if peer is None or not trusted(peer) or not forwarded_for:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop
    return hops[0] if hops else peer


def relocation_refusal(
    *, role: str, jurisdiction_code: str, county_code: str, needs_locating: bool, placed_in: str | None
) -> str | None:
    """Why this person may not move this report (None: they may). A grid worker places reports that
    wait to be located; moving a placed report is a correction for the centre whose area it is in."""
    if role == "grid_worker" and not needs_locating:
        return "该反映已定位；如位置有误，请联系调度员更正。"
    if placed_in and jurisdiction_code != county_code and not placed_in.startswith(jurisdiction_code):
        return "该反映不在您负责的区域内；如位置有误，请联系其所在区域的调度员更正。"
    return None
