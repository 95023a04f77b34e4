"""Calls to the services' public APIs with the person's own token, and their refusals (RFC 9457
problem+json) as the Chinese sentence the console shows on the form."""

import re

import httpx

from shared.case_actions import ACTIONS

# The services as staff know them, for "which part is unavailable".
SERVICE_NAMES = {"intake": "群众上报", "dispatch": "案件调度", "media": "照片", "sla": "办理时限", "notify": "消息通知"}


class Unavailable(Exception):
    """A service did not answer (down, or too slow)."""

    def __init__(self, service: str):
        self.message = (
            f"{SERVICE_NAMES.get(service, service)}服务（{service}）暂时无法访问，请稍后再试；其他功能不受影响。"
        )
        super().__init__(self.message)
        self.status = 502


class Refused(Exception):
    """A service answered with an error; `message` says it in Chinese."""

    def __init__(self, status: int, message: str, errors: list[dict] | None = None):
        super().__init__(message)
        self.status, self.message = status, message
        self.errors = errors or []  # the problem's per-field errors ({field, message}), when it has them


GENERIC = {
    400: "请求有误，请检查填写的内容。",
    401: "登录已失效，请重新登录。",
    403: "您无权执行此操作。",
    404: "没有找到这个案件或材料。",
    409: "案件当前状态不允许此操作，请刷新页面查看最新状态。",
    413: "文件太大，请压缩后再上传。",
    415: "不支持的文件类型，请上传照片。",
    422: "填写的内容不符合要求。",
}
CHINESE = re.compile(r"[\u4e00-\u9fff]")
REQUIRED = re.compile(r"^(\w+) is required$")


def field_labels() -> dict[str, str]:
    labels = {"after_media_ids": "整改后照片", "comment": "评价或补充说明", "priority": "紧急程度"}
    for spec in ACTIONS.values():
        for name, info in spec.request.model_fields.items():
            labels.setdefault(name, info.description or name)
    return labels


LABELS = field_labels()


def chinese_message(response: httpx.Response) -> str:
    """What a refusal says, in Chinese: the service's own Chinese detail when it has one."""
    try:
        problem = response.json()
    except ValueError:
        problem = {}
    detail = str(problem.get("detail") or "") if isinstance(problem, dict) else ""
    if CHINESE.search(detail):
        return detail
    if missing := REQUIRED.match(detail):
        return f"请填写「{LABELS.get(missing[1], missing[1])}」。"
    if isinstance(problem, dict) and problem.get("errors"):
        fields = "、".join(
            dict.fromkeys(LABELS.get(str(x.get("field")), str(x.get("field"))) for x in problem["errors"])
        )
        return f"填写的内容不符合要求：{fields}。"
    return GENERIC.get(response.status_code, f"服务返回错误（{response.status_code}），请稍后再试。")


def field_errors(response: httpx.Response) -> list[dict]:
    try:
        problem = response.json()
    except ValueError:
        return []
    errors = problem.get("errors") if isinstance(problem, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


async def call(
    http: httpx.AsyncClient, service: str, method: str, url: str, *, token: str | None = None, **kwargs
) -> httpx.Response:
    """One request to a service; raises Unavailable or Refused (with the Chinese message)."""
    headers = kwargs.pop("headers", {}) | ({"authorization": f"Bearer {token}"} if token else {})
    try:
        response = await http.request(method, url, headers=headers, **kwargs)
    except httpx.HTTPError:
        raise Unavailable(service) from None
    if response.status_code >= 400:
        raise Refused(response.status_code, chinese_message(response), field_errors(response))
    return response
