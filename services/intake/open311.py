"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2), JSON and XML, so existing 311
clients work unchanged. The taxonomy's categories are the services; a service request is a report
(service_request_id = report id). Errors use the spec's format: a list of {code, description}.

Reads show only what residents chose to publish: reports posted through Open311, their place rounded
to about 100 m, never the reporter's phone, name or account (reports from the H5 form, WeChat and the
API stay with staff).

Parameters are read by hand rather than by FastAPI's validation, because errors here must be
Open311 error arrays, not problem+json (except a file sent where text belongs: see _form_text).
"""

import math
import re
import secrets
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from services.intake import store
from services.intake.domain import (
    CLOSED_STATUSES,
    MAX_ADDRESS_CHARS,
    MAX_DESCRIPTION_CHARS,
    PHONE_PATTERN,
    Channel,
    OutsideCounty,
    place_report,
)
from services.intake.reports import Intake, check_rate_limit, client_ip, submit_report
from shared.events import utcnow
from shared.problems import Problem
from shared.web import public

router = APIRouter(prefix="/open311/v2", include_in_schema=True, tags=["open311"])

SPEC = "http://wiki.open311.org/GeoReport_v2"
FORMATS = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
PHONE = re.compile(PHONE_PATTERN)
# GET requests.json defaults from the spec: the last 90 days, at most 1000 requests.
DEFAULT_SPAN = timedelta(days=90)
MAX_RESULTS = 1000
# Keywords offered to clients per service, from the category's own name (split on '/').
_SPLIT = re.compile(r"[/、]")


class Open311Error(Exception):
    def __init__(self, status: int, description: str):
        super().__init__(description)
        self.status, self.description = status, description


def _xml(root: str, item: str | None, data) -> bytes:
    """Spec XML: a root element holding one element per item (or the fields of one object)."""
    top = ET.Element(root)

    def fill(parent, obj):
        for key, value in obj.items():
            child = ET.SubElement(parent, key)
            if isinstance(value, list):
                # The only list in GeoReport v2 XML is a service definition's <attributes>.
                for v in value:
                    fill(ET.SubElement(child, "attribute"), v)
            elif isinstance(value, bool):
                child.text = "true" if value else "false"
            elif value is not None:
                child.text = str(value)

    if item is None:
        fill(top, data)
    else:
        for obj in data:
            fill(ET.SubElement(top, item), obj)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="utf-8")


def _respond(fmt: str, data, *, root: str, item: str | None, status: int = 200) -> Response:
    if fmt == "xml":
        return Response(_xml(root, item, data), status_code=status, media_type=FORMATS["xml"])
    return JSONResponse(data, status_code=status, media_type=FORMATS["json"])


def _error(fmt: str, status: int, description: str) -> Response:
    return _respond(fmt, [{"code": status, "description": description}], root="errors", item="error", status=status)


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, f"format '{fmt}' is not supported; use json or xml")
    return fmt


def _form_text(form: FormData, name: str) -> str | None:
    """A text field of a posted form, stripped; None when it is absent. A file sent where text belongs
    is refused with 422 problem+json naming the field (no Open311 field is a file)."""
    value = form.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip()
    raise Problem(
        422,
        "Invalid request",
        f"{name} must be text, not a file.",
        kind="validation-error",
        errors=[{"field": name, "message": "a file where text is expected"}],
    )


def _check_jurisdiction(intake: Intake, value: str | None) -> None:
    if value not in (None, "", intake.settings.jurisdiction_code):
        raise Open311Error(404, f"jurisdiction_id '{value}' is not served here")


def _datetime(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise Open311Error(400, f"{name} must be an ISO 8601 date/time with a time zone") from exc
    if parsed.tzinfo is None:
        raise Open311Error(400, f"{name} must include a time zone")
    return parsed


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _intake(request: Request) -> Intake:
    return request.app.state.intake


async def _limit_reads(request: Request) -> None:
    """Public reads count against the client's IP like posts do."""
    intake = _intake(request)
    async with request.app.state.runtime.pool.acquire() as conn:
        try:
            await check_rate_limit(conn, settings=intake.settings, ip=client_ip(request, intake.settings), phone=None)
        except Problem as exc:
            raise Open311Error(429, "too many requests; try again later") from exc


def _service(intake: Intake, code: str) -> dict:
    c = intake.taxonomy.categories[code]
    return {
        "service_code": c.code,
        "service_name": c.name,
        "description": f"{c.name}（责任部门：{intake.taxonomy.department_name(c.department_code)}）",
        "metadata": False,
        "type": "realtime",
        "keywords": ",".join(k for k in _SPLIT.split(c.name) if k),
        "group": intake.taxonomy.department_name(c.department_code),
    }


def _coarse(degrees: float | None) -> float | None:
    return None if degrees is None else round(degrees, 3)


def _request_view(intake: Intake, row) -> dict:
    categories = intake.taxonomy.categories
    category = categories.get(row["category"]) if row["category"] else None
    department = row["department_code"] or (category.department_code if category else None)
    return {
        "service_request_id": str(row["report_id"]),
        "status": "closed" if row["status"] in CLOSED_STATUSES else "open",
        "status_notes": row["status"],
        "service_name": category.name if category else "待分拨",
        "service_code": row["category"],
        "description": row["description"],
        "agency_responsible": intake.taxonomy.departments.get(department) if department else None,
        "service_notice": f"案件编号 {row['case_no']}" if row["case_no"] else None,
        "requested_datetime": _iso(row["submitted_at"]),
        "updated_datetime": _iso(row["updated_at"]),
        "expected_datetime": None,
        "address": row["address"],
        "address_id": None,
        "zipcode": None,
        # About 100 m: enough to find the problem, not the doorstep of the resident who reported it.
        "lat": _coarse(row["lat"]),
        "long": _coarse(row["lng"]),
        "media_url": next((m for m in row["external_media"] if m.startswith(("https://", "http://"))), None),
    }


@router.get("/discovery.{fmt}")
@public("Open311 GeoReport v2 discovery is public by the standard")
async def discovery(fmt: str, request: Request):
    try:
        fmt = _format(fmt)
    except Open311Error as exc:
        return _error("json", exc.status, exc.description)
    base = str(request.base_url).rstrip("/") + "/open311/v2/"
    data: dict[str, Any] = {
        "changeset": "2026-11-26T00:00:00Z",
        "contact": "县网格化服务管理中心",
        "key_service": "向县网格化服务管理中心申请 api_key",
        "endpoints": [
            {
                "specification": SPEC,
                "url": base,
                "changeset": "2026-11-26T00:00:00Z",
                "type": "production",
                "formats": ["text/xml", "application/json"],
            },
        ],
    }
    if fmt == "xml":
        top = ET.Element("discovery")
        for key in ("changeset", "contact", "key_service"):
            ET.SubElement(top, key).text = data[key]
        endpoints = ET.SubElement(top, "endpoints")
        for ep in data["endpoints"]:
            node = ET.SubElement(endpoints, "endpoint")
            for key in ("specification", "url", "changeset", "type"):
                ET.SubElement(node, key).text = ep[key]
            formats = ET.SubElement(node, "formats")
            for f in ep["formats"]:
                ET.SubElement(formats, "format").text = f
        body = b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(top, encoding="utf-8")
        return Response(body, media_type=FORMATS["xml"])
    return JSONResponse(data, media_type=FORMATS["json"])


@router.get("/services.{fmt}")
@public("Open311 service list: the categories, no personal data")
async def services(fmt: str, request: Request, jurisdiction_id: str | None = None):
    try:
        fmt = _format(fmt)
        intake = _intake(request)
        _check_jurisdiction(intake, jurisdiction_id)
    except Open311Error as exc:
        return _error(fmt if fmt in FORMATS else "json", exc.status, exc.description)
    return _respond(
        fmt, [_service(intake, code) for code in intake.taxonomy.categories], root="services", item="service"
    )


@router.get("/services/{service_code}.{fmt}")
@public("Open311 service definition: no personal data")
async def service_definition(service_code: str, fmt: str, request: Request, jurisdiction_id: str | None = None):
    try:
        fmt = _format(fmt)
        intake = _intake(request)
        _check_jurisdiction(intake, jurisdiction_id)
        if service_code not in intake.taxonomy.categories:
            raise Open311Error(404, f"service_code '{service_code}' not found")
    except Open311Error as exc:
        return _error(fmt if fmt in FORMATS else "json", exc.status, exc.description)
    # No service needs extra attributes: the description and the place are all we ask.
    return _respond(fmt, {"service_code": service_code, "attributes": []}, root="service_definition", item=None)


@router.post("/requests.{fmt}")
@public("Open311 clients post with their own api_key, checked in the route")
async def post_request(fmt: str, request: Request):
    fmt = fmt if fmt in FORMATS else "json"
    intake, pool = _intake(request), request.app.state.runtime.pool
    try:
        _format(fmt)
        form = await request.form()
        if _form_text(form, "api_key") not in intake.settings.intake_open311_api_keys:
            raise Open311Error(403, "api_key is missing or not valid")
        _check_jurisdiction(intake, _form_text(form, "jurisdiction_id"))
        code = _form_text(form, "service_code")
        if not code:
            raise Open311Error(400, "service_code is required")
        if code not in intake.taxonomy.categories:
            raise Open311Error(404, f"service_code '{code}' not found")
        description = _form_text(form, "description") or ""
        if not 2 <= len(description) <= MAX_DESCRIPTION_CHARS:
            raise Open311Error(400, f"description is required (2 to {MAX_DESCRIPTION_CHARS} characters)")
        lat_text, lng_text = _form_text(form, "lat"), _form_text(form, "long")
        address = _form_text(form, "address_string") or None
        if address and len(address) > MAX_ADDRESS_CHARS:
            raise Open311Error(400, f"address_string is longer than {MAX_ADDRESS_CHARS} characters")
        if (lat_text is None) != (lng_text is None) or (lat_text is None and not address):
            raise Open311Error(400, "a location is required: lat and long, or address_string")
        lat: float | None = None
        lng: float | None = None
        if lat_text is not None and lng_text is not None:
            try:
                lat, lng = float(lat_text), float(lng_text)
            except ValueError as exc:
                raise Open311Error(400, "lat and long must be numbers") from exc
            if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
                raise Open311Error(400, "lat and long are out of range")
        media_url = _form_text(form, "media_url") or None
        if media_url is not None and (len(media_url) > 1000 or not media_url.startswith(("https://", "http://"))):
            raise Open311Error(400, "media_url must be an http(s) URL")
        phone = _form_text(form, "phone") or None
        if phone is not None and not PHONE.fullmatch(phone):
            raise Open311Error(400, "phone must be an 11-digit mainland mobile number")
        try:
            # The spec's coordinates are WGS-84.
            placement = place_report(lat=lat, lng=lng, coord_system="wgs84", county=intake.county)
        except OutsideCounty as exc:
            raise Open311Error(400, "the location is outside this jurisdiction") from exc
        async with pool.acquire() as conn:
            try:
                await check_rate_limit(
                    conn, settings=intake.settings, ip=client_ip(request, intake.settings), phone=phone
                )
            except Problem as exc:
                raise Open311Error(429, "too many requests; try again later") from exc
            token = secrets.token_urlsafe(16)
            account_id = _form_text(form, "account_id") or None
            async with conn.transaction():
                accepted = await submit_report(
                    conn,
                    intake=intake,
                    description=description,
                    category=code,
                    placement=placement,
                    input_lat=lat,
                    input_lng=lng,
                    coord_system="wgs84" if lat is not None else None,
                    address=address,
                    channel=Channel.open311.value,
                    reporter_phone=phone,
                    media_ids=[],
                    reporter_ref=f"open311:{account_id}" if account_id else None,
                    open311_token=token,
                    external_media=(media_url,) if media_url else (),
                )
    except Open311Error as exc:
        return _error(fmt, exc.status, exc.description)
    data = [
        {
            "service_request_id": str(accepted.report_id),
            "token": token,
            "service_notice": accepted.answer().message,
            "account_id": account_id,
        }
    ]
    return _respond(fmt, data, root="service_requests", item="request", status=201)


@router.get("/requests.{fmt}")
@public("Open311 reads are public by the standard: only reports posted through Open311, located to ~100 m")
async def get_requests(fmt: str, request: Request):
    fmt = fmt if fmt in FORMATS else "json"
    intake = _intake(request)
    try:
        _format(fmt)
        await _limit_reads(request)
        q = request.query_params
        _check_jurisdiction(intake, q.get("jurisdiction_id"))
        ids = None
        if q.get("service_request_id"):
            try:
                ids = [UUID(i.strip()) for i in q["service_request_id"].split(",") if i.strip()]
            except ValueError as exc:
                raise Open311Error(400, "service_request_id must be request ids separated by commas") from exc
        code = q.get("service_code") or None
        if code and code not in intake.taxonomy.categories:
            raise Open311Error(404, f"service_code '{code}' not found")
        start, end = _datetime(q.get("start_date"), "start_date"), _datetime(q.get("end_date"), "end_date")
        if ids is None and start is None:
            start = (end or utcnow()) - DEFAULT_SPAN
        statuses = None
        if q.get("status"):
            wanted = {s.strip() for s in q["status"].split(",")}
            if not wanted <= {"open", "closed"}:
                raise Open311Error(400, "status must be open, closed or both")
            statuses = (
                _STATUSES_OPEN + _STATUSES_CLOSED
                if wanted == {"open", "closed"}
                else (_STATUSES_OPEN if wanted == {"open"} else _STATUSES_CLOSED)
            )
        async with request.app.state.runtime.pool.acquire() as conn:
            rows = await store.list_reports(
                conn,
                ids=ids,
                category=code,
                statuses=statuses,
                start=start,
                end=end,
                limit=MAX_RESULTS,
                channel=Channel.open311.value,
            )
    except Open311Error as exc:
        return _error(fmt, exc.status, exc.description)
    return _respond(fmt, [_request_view(intake, r) for r in rows], root="service_requests", item="request")


_STATUSES_CLOSED = sorted(CLOSED_STATUSES)
_STATUSES_OPEN = ["submitted", "triaged", "dispatched", "acknowledged", "in_progress", "returned", "escalated"]


@router.get("/requests/{request_id}.{fmt}")
@public("Open311 reads are public by the standard: only reports posted through Open311, located to ~100 m")
async def get_request(request_id: str, fmt: str, request: Request):
    fmt = fmt if fmt in FORMATS else "json"
    intake = _intake(request)
    try:
        _format(fmt)
        _check_jurisdiction(intake, request.query_params.get("jurisdiction_id"))
        await _limit_reads(request)
        try:
            report_id = UUID(request_id)
        except ValueError as exc:
            raise Open311Error(404, f"service request '{request_id}' not found") from exc
        async with request.app.state.runtime.pool.acquire() as conn:
            row = await store.find_report(conn, report_id=report_id)
        if row is None or row["channel"] != Channel.open311.value:  # others were not made public
            raise Open311Error(404, f"service request '{request_id}' not found")
    except Open311Error as exc:
        return _error(fmt, exc.status, exc.description)
    return _respond(fmt, [_request_view(intake, row)], root="service_requests", item="request")


@router.get("/tokens/{token}.{fmt}")
@public("Open311 clients turn their token into a request id")
async def get_token(token: str, fmt: str, request: Request):
    fmt = fmt if fmt in FORMATS else "json"
    try:
        _format(fmt)
        await _limit_reads(request)
        async with request.app.state.runtime.pool.acquire() as conn:
            row = await store.find_report_by_token(conn, token=token)
        if row is None:
            raise Open311Error(404, f"token '{token}' not found")
    except Open311Error as exc:
        return _error(fmt, exc.status, exc.description)
    data = [{"service_request_id": str(row["report_id"]), "token": token}]
    return _respond(fmt, data, root="service_requests", item="request")
