"""The H5 pages residents open inside WeChat: 我要反映 (report form), 我要查询 (query) and 办结确认
(the one-tap confirmation the 回访 message links to)."""

import json
import uuid
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from shared.problems import Problem
from shared.web import public

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "h5.css": "text/css",
    "report.js": "text/javascript",
    "query.js": "text/javascript",
    "confirm.js": "text/javascript",
}

router = APIRouter(prefix="/h5", include_in_schema=False)


@router.get("/")
@public("the resident H5 report page (我要反映)")
async def report_page(request: Request):
    # A fresh idempotency key per page load: a double tap or a retried submit makes one report.
    config = {"idempotency_key": f"h5-{uuid.uuid4()}"}
    html = (STATIC / "report.html").read_text(encoding="utf-8")
    # "</" can't appear inside the JSON, so the <script> element can't be closed early.
    return HTMLResponse(html.replace("__CONFIG__", json.dumps(config).replace("</", "<\\/")))


@router.get("/query")
@public("the resident H5 query page (我要查询)")
async def query_page():
    return FileResponse(STATIC / "query.html", media_type="text/html; charset=utf-8")


@router.get("/confirm")
@public("办结确认: the page the reporter's 回访 link opens; the link's secret is checked when they tap")
async def confirm_page():
    return FileResponse(STATIC / "confirm.html", media_type="text/html; charset=utf-8")


@router.get("/static/{name}")
@public("scripts and styles of the resident H5 pages")
async def asset(name: str):
    if name not in ASSETS:
        raise Problem(404, "Not found", f"No asset {name}.", kind="not-found")
    return FileResponse(STATIC / name, media_type=f"{ASSETS[name]}; charset=utf-8")
