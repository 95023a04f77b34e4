"""Broadcasts (政策宣传) to the resident groups: which groups a target reaches, the message each
receives, and who may send or follow one. Pure: api.py takes the request, store.py keeps the
deliveries."""

from services.notify.domain import Forbidden, Group
from services.notify.messages import markdown_message, text_message
from shared.auth import Actor


def select_groups(groups: list[Group], target: str) -> list[Group]:
    """The groups a broadcast reaches: "all", or those whose division code starts with `target`."""
    if target == "all":
        return list(groups)
    return [g for g in groups if g.jurisdiction_code.startswith(target)]


def broadcast_message(*, msgtype: str, content: str) -> dict:
    """The robot message every group of a broadcast receives."""
    return markdown_message(content) if msgtype == "markdown" else text_message(content)


# 政策宣传 speaks to every household of a place in the county's name: it is published by those who
# answer for what the county says (supervisors, admins). Dispatchers route cases and are not in
# that chain; keeping them out also keeps small the circle that can message every resident group.
BROADCASTERS = frozenset({"supervisor", "admin"})


def authorize_broadcast(actor: Actor, *, target: str, county_code: str) -> None:
    """Raise Forbidden unless the actor may send, or follow, a broadcast to `target`: a supervisor
    or admin whose jurisdiction holds every group the target reaches ("all" is the whole county)."""
    if actor.role not in BROADCASTERS:
        raise Forbidden("政策宣传只能由督查员或管理员发布和查看。请联系县指挥中心的督查员或管理员发布。")
    reach = county_code if target == "all" else target
    if not reach.startswith(actor.jurisdiction_code):
        raise Forbidden(
            f"您只能发布和查看 {actor.jurisdiction_code} 辖区内的政策宣传。"
            f"请把发布范围改为以 {actor.jurisdiction_code} 开头的区划代码，或请上级督查员发布。"
        )
