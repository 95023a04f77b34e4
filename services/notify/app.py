"""Notify: tells departments, supervisors, reporters and resident groups through WeCom, WeChat and
SMS; takes WeCom/official-account messages in for intake.

The files notify works from (the department directory, the resident groups, the SLA policy) are
read here, once at startup, so a broken file stops the service and the rules get plain data.
"""

import csv
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import yaml
from fastapi import FastAPI

from services.notify import privacy
from services.notify.api import router as staff_router
from services.notify.callbacks import callback_configs
from services.notify.callbacks import router as callback_router
from services.notify.channels import Senders
from services.notify.delivery import make_delivery_loop
from services.notify.domain import DepartmentContact, DepartmentHead, Directory, GridWorker, Group, robot_names
from services.notify.handlers import make_handlers
from services.notify.settings import NotifySettings
from services.notify.sms import HttpSmsGateway
from services.notify.staff_messages import place_names
from services.notify.wechat import WeChatOfficialAccountClient
from services.notify.wecom import WeComAiBotClient, WeComAppClient, WeComRobotClient
from shared.jurisdictions import load_county
from shared.objects import ObjectStore
from shared.service import running_service
from shared.sla_policy import load_sla_policy
from shared.topics import service_topics
from shared.web import create_service_app


def _contact(entry: dict) -> DepartmentContact:
    return DepartmentContact(entry["robot_key"], tuple(entry.get("mentioned_mobiles", ())))


def load_directory(path: Path) -> Directory:
    """Each department's WeCom group robot and the people to @ there (and its head, for 通报), plus
    the supervision office, the command centre and the county leadership group, from the directory file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    supervisor, leadership = data.get("supervisor"), data.get("leadership")
    return Directory(
        departments={code: _contact(d) for code, d in data["departments"].items()},
        supervisor=_contact(supervisor) if supervisor else None,
        command_center=data.get("command_center"),
        leadership=_contact(leadership) if leadership else None,
        heads={
            code: DepartmentHead(d["head"].get("wecom_userid"), d["head"].get("mobile"))
            for code, d in data["departments"].items()
            if d.get("head")
        },
    )


def load_groups(path: Path) -> list[Group]:
    """The county's resident WeChat groups (one robot each) from the groups CSV."""
    with path.open(encoding="utf-8", newline="") as f:
        return [Group(r["group_id"], r["name"], r["jurisdiction_code"], r["robot_key"]) for r in csv.DictReader(f)]


def make_senders(settings: NotifySettings, http: httpx.AsyncClient) -> Senders:
    """Every channel's client over one pooled HTTP client."""
    return Senders(
        robot=WeComRobotClient(settings.wecom_base_url, http),
        app=WeComAppClient(
            settings.wecom_base_url,
            http,
            corp_id=settings.wecom_corp_id,
            corp_secret=settings.wecom_corp_secret,
            agent_id=settings.wecom_agent_id,
        ),
        official_account=WeChatOfficialAccountClient(
            settings.wechat_base_url, http, app_id=settings.wechat_app_id, app_secret=settings.wechat_app_secret
        ),
        sms=HttpSmsGateway(settings.sms_base_url, http, sign_name=settings.sms_sign_name),
        phone_keys=settings.phone_keys(),
        aibot=WeComAiBotClient(http),
    )


def load_grid_workers(path: Path) -> dict[str, GridWorker]:
    """Each grid's worker (their WeCom user id) and the grid's name, from the county map."""
    county = load_county(path)
    return {code: GridWorker(user_id=g.worker.worker_id, grid_name=g.name) for code, g in county.grids.items()}


def create_app(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or NotifySettings(service_name="notify")
    directory = load_directory(settings.directory_path)
    sla_policy = load_sla_policy(settings.sla_policy_path)
    grid_workers = load_grid_workers(settings.county_map_path)
    groups = load_groups(settings.notify_groups_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Connections are kept per host and reused: a broadcast reaches thousands of robots in parallel.
        limits = httpx.Limits(
            max_connections=settings.notify_delivery_concurrency,
            max_keepalive_connections=settings.notify_delivery_concurrency,
        )
        incoming = ObjectStore(settings, bucket=settings.intake_incoming_bucket)
        await incoming.ensure_bucket()
        async with (
            httpx.AsyncClient(timeout=5.0, limits=limits) as http,
            running_service(
                settings,
                service_dir=Path(__file__).parent,
                topics=service_topics("notify").reads,
                handlers=make_handlers(
                    settings=settings,
                    directory=directory,
                    sla_policy=sla_policy,
                    places=place_names(groups),
                    grid_workers=grid_workers,
                    groups=groups,
                ),
                loops={
                    "delivery": make_delivery_loop(lambda s: make_senders(s, http)),
                    "retention": privacy.retention_loop,
                },
            ) as runtime,
        ):
            app.state.runtime, app.state.http, app.state.incoming = runtime, http, incoming
            yield

    app = create_service_app(settings, title="GridLink notify", lifespan=lifespan)
    app.state.groups = groups
    app.state.robot_names = robot_names(directory, app.state.groups)
    app.state.callbacks = callback_configs(settings)
    app.include_router(staff_router)
    app.include_router(callback_router)
    return app
