"""Pure notify rules: who is told about what, and the Chinese text they read."""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

from services.notify.wecom import text_message
from shared.events import CaseDispatched

CHINA_TZ = timezone(timedelta(hours=8))
PRIORITY_LABEL = {"urgent": "紧急", "normal": "一般"}


@dataclass(frozen=True)
class DepartmentContact:
    robot_key: str
    mentioned_mobiles: tuple[str, ...]


def load_directory(path: Path) -> dict[str, DepartmentContact]:
    """Department code → its WeCom group robot and the people to @ there."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {
        code: DepartmentContact(d["robot_key"], tuple(d.get("mentioned_mobiles", ())))
        for code, d in data["departments"].items()
    }


def dispatched_message(case: CaseDispatched, *, contact: DepartmentContact, ack_minutes: int) -> dict:
    """派单 notice to the department's group, @-mentioning its handlers."""
    at = case.dispatched_at.astimezone(CHINA_TZ).strftime("%m-%d %H:%M")
    short_id = str(case.case_id)[:8]
    content = (
        f"【派单】{PRIORITY_LABEL.get(case.priority, case.priority)} 案件 {short_id}\n"
        f"类别：{case.category_name}\n"
        f"承办：{case.department_name}\n"
        f"内容：{case.description}\n"
        f"派单时间：{at}\n"
        f"请在{ack_minutes}分钟内接单。"
    )
    return text_message(content, mentioned_mobiles=list(contact.mentioned_mobiles))


def backoff_seconds(attempt: int, base: float) -> float:
    """Exponential backoff between delivery attempts, capped at 10 minutes."""
    return min(base * 2 ** (attempt - 1), 600.0)

