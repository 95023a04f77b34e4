"""The case actions (案件操作) as data: one spec per action, read by every service that needs it.

Dispatch enforces them (who, from which status, to which status, what the request must carry),
sla applies their clock effects to the deadlines, the API builds one route and request model per
action, and the staff console offers exactly the actions a person may take now. Adding an action is
one `ActionSpec` in `ACTIONS` — plus, when it has checks of its own beyond the spec (the acknowledging
department, the joint plan…), one rule in `services/dispatch/domain.py`'s `RULES` — and its tests;
`tests/unit/test_case_actions.py` walks every spec for every role and status.

Pure data: no I/O, nothing here imports a service.
"""

from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

# Statuses in which the problem is still being worked on (not yet resolved).
OPEN = ("triaged", "dispatched", "acknowledged", "in_progress", "returned")
# Every status a case can be in; "escalated" is where a lower centre's copy of the case ends.
STATUSES = (*OPEN, "resolved", "verified", "closed", "escalated", "merged", "cancelled")


@dataclass(frozen=True)
class Clocks:
    """What an action does to the case's deadlines (applied by services/sla to the event)."""

    restart: bool = False  # a new round: the earlier round's clocks end and new ones start (派单)
    completes: str | None = None  # the stage this action fulfils; it counts in time or late (三率)
    stop_all: bool = False  # every running clock of the case ends
    pause: bool = False  # the resolution clock stops counting…
    resume: bool = False  # …and goes on, longer by the event's `detail.minutes` when it has them
    hold: bool = False  # every running clock of the case waits where it is (退回: until the ruling)…
    release: bool = False  # …and the clocks it held go on with the time they had left (not restarted)
    opens: str | None = None  # a stage this action starts for the dispatch centre itself (仲裁)
    # Every running clock ends when the action leaves the case in one of these statuses (a 核实
    # that finds nothing there cancels the case; one that confirms it changes no clock).
    stop_all_if: tuple[str, ...] = ()


# --- request models: what each action's POST body may carry ---------------------------------------
# Every field is optional in the model: what an action requires is its spec's `requires`, checked
# with the case's state, so a missing result answers 409 with the reason like any other refusal.


class ActionRequest(BaseModel):
    """A case action with nothing but an optional note."""

    model_config = ConfigDict(extra="ignore")
    reason: str | None = Field(None, max_length=2000, description="理由或备注")


class DepartmentRequest(ActionRequest):
    department_code: str | None = Field(None, max_length=64, description="主办部门")
    co_department_codes: list[str] | None = Field(None, description="协办部门")


class ResultRequest(ActionRequest):
    result: str | None = Field(None, max_length=4000, description="处置结果或进展")


class ResolveRequest(ResultRequest):
    after_media_ids: list[UUID] | None = Field(None, description="整改后照片（media 服务的媒体编号）")


class ReturnRequest(ActionRequest):
    evidence_media_ids: list[UUID] | None = Field(None, description="退回依据（media 服务的媒体编号）")


class PlanRequest(ActionRequest):
    plan: str | None = Field(None, max_length=8000, description="联合处置方案")


class RatingRequest(ActionRequest):
    rating: int | None = Field(None, description="满意度 1–5")
    comment: str | None = Field(None, max_length=2000)


class MinutesRequest(ActionRequest):
    minutes: int | None = Field(None, ge=1, le=60 * 24 * 30, description="延长的分钟数")


class ReplyRequest(ResultRequest):
    comment: str | None = Field(None, max_length=2000)


class ReclassifyRequest(ActionRequest):
    category: str | None = Field(None, max_length=64, description="正确的问题类别")
    priority: str | None = Field(None, pattern="^(urgent|normal)$")


class MergeRequest(ActionRequest):
    into_case_id: UUID | None = Field(None, description="并入的案件")


class DevicePosition(BaseModel):
    """Where the phone was (navigator.geolocation, WGS-84), kept as evidence of being on site."""

    model_config = ConfigDict(extra="ignore")
    lat: float = Field(ge=-90, le=90)
    lng: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="the phone's accuracy estimate")


# 核实's findings: the problem is there as reported, or it is not (情况不属实).
FINDINGS = {"confirmed": "情况属实", "unfounded": "情况不属实"}


class CheckRequest(ActionRequest):
    finding: Literal["confirmed", "unfounded"] | None = Field(None, description="核实结果")
    reason: str | None = Field(None, max_length=2000, description="核实情况（不属实时必填）")
    before_media_ids: list[UUID] | None = Field(None, description="现场照片（media 服务的媒体编号）")
    device_location: DevicePosition | None = Field(None, description="核实时手机所在位置")


@dataclass(frozen=True)
class ActionSpec:
    name: str
    label: str  # what staff read (Simplified Chinese)
    roles: frozenset[str]  # who may do it; admins may do everything
    from_statuses: tuple[str, ...]
    to_status: str | None  # None keeps the status
    event_type: str  # published on gridlink.cases
    request: type[ActionRequest] = ActionRequest
    requires: tuple[str, ...] = ()  # arguments that must be present and non-empty
    lead_only: bool = False  # a handler may do it only for the lead (主办) department
    clocks: Clocks = Clocks()
    corrects_triage: bool = False  # the correction is also published for triage to learn from
    other_case: str | None = None  # the argument naming another case the action needs (merge's target)

    @property
    def path(self) -> str:
        return self.name.replace("_", "-")

    def allows(self, role: str) -> bool:
        return role == "admin" or role in self.roles


WORKING = ("acknowledged", "in_progress")
REDISPATCH = Clocks(restart=True)
# A dispatcher rules on a returned case (退单仲裁) within the policy's `arbitrate` time.
ARBITRATE = "arbitrate"

ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            name="dispatch",
            label="派单",
            roles=frozenset({"dispatcher", "system"}),
            from_statuses=("triaged",),
            to_status="dispatched",
            event_type="case.dispatched",
            request=DepartmentRequest,
            requires=("department_code",),
            clocks=REDISPATCH,
        ),
        # The lead's acknowledgement moves the case; a co-handler's is recorded and keeps the status.
        ActionSpec(
            name="acknowledge",
            label="接单",
            roles=frozenset({"handler"}),
            from_statuses=("dispatched", *WORKING),
            to_status=None,
            event_type="case.acknowledged",
            clocks=Clocks(completes="acknowledge"),
        ),
        ActionSpec(
            name="start",
            label="开始处置",
            roles=frozenset({"handler"}),
            from_statuses=("acknowledged",),
            to_status="in_progress",
            event_type="case.started",
            lead_only=True,
        ),
        ActionSpec(
            name="submit_plan",
            label="提交联合处置方案",
            roles=frozenset({"handler"}),
            from_statuses=WORKING,
            to_status=None,
            event_type="case.plan_submitted",
            request=PlanRequest,
            requires=("plan",),
            lead_only=True,
            clocks=Clocks(completes="joint_plan"),
        ),
        ActionSpec(
            name="report_part",
            label="协办反馈",
            roles=frozenset({"handler"}),
            from_statuses=WORKING,
            to_status=None,
            event_type="case.part_reported",
            request=ResultRequest,
            requires=("result",),
        ),
        # 反馈进展: the department says how far it got (the resident and the centre can read it),
        # nothing else changes.
        ActionSpec(
            name="progress",
            label="反馈进展",
            roles=frozenset({"handler"}),
            from_statuses=WORKING,
            to_status=None,
            event_type="case.progress_reported",
            request=ResultRequest,
            requires=("result",),
        ),
        ActionSpec(
            name="resolve",
            label="办结",
            roles=frozenset({"handler"}),
            from_statuses=WORKING,
            to_status="resolved",
            event_type="case.resolved",
            request=ResolveRequest,
            requires=("result", "after_media_ids"),
            lead_only=True,
            clocks=Clocks(completes="resolve", stop_all=True),
        ),
        # 即知即改: the grid worker settles a small problem on the spot, with the "after" photos; the
        # case is closed as handled by the grid, and no department's clock counts it.
        ActionSpec(
            name="settle",
            label="即知即改",
            roles=frozenset({"grid_worker"}),
            from_statuses=("dispatched", *WORKING),
            to_status="resolved",
            event_type="case.settled",
            request=ResolveRequest,
            requires=("result", "after_media_ids"),
            clocks=Clocks(stop_all=True),
        ),
        # 现场核实: the grid worker goes to a new report and says whether it is real — with a note, and
        # optionally a photo of it (整改前) and the phone's position. 属实 keeps the case where it is;
        # 不属实 ends it as 撤销 does for an unfounded report, every clock with it. Once per case.
        ActionSpec(
            name="check",
            label="现场核实",
            roles=frozenset({"grid_worker"}),
            from_statuses=OPEN,
            to_status=None,  # 属实: unchanged; 不属实: cancelled (the rule says which)
            event_type="case.checked",
            request=CheckRequest,
            requires=("finding",),
            clocks=Clocks(stop_all_if=("cancelled",)),
        ),
        ActionSpec(
            name="verify",
            label="回访",
            # "reporter": the reporter's own answer to the 回访 question (reporter.rated from intake).
            roles=frozenset({"dispatcher", "grid_worker", "system", "reporter"}),
            from_statuses=("resolved",),
            to_status="verified",
            event_type="case.verified",
            request=RatingRequest,
        ),
        ActionSpec(
            name="close",
            label="结案",
            roles=frozenset({"dispatcher", "supervisor", "system"}),
            from_statuses=("verified",),
            to_status="closed",
            event_type="case.closed",
            clocks=Clocks(stop_all=True),
        ),
        # 退单: the department says why (and may show evidence); its clocks wait while the dispatcher
        # of the case's level rules, on a clock of its own.
        ActionSpec(
            name="return",
            label="退回",
            roles=frozenset({"handler"}),
            from_statuses=("dispatched", "acknowledged"),
            to_status="returned",
            event_type="case.returned",
            request=ReturnRequest,
            requires=("reason",),
            lead_only=True,
            clocks=Clocks(hold=True, opens=ARBITRATE),
        ),
        # The ruling (仲裁), always with its reason. Upheld: the department was right, the case goes
        # to another one (a new round of clocks)…
        ActionSpec(
            name="uphold_return",
            label="同意退回并改派",
            roles=frozenset({"dispatcher"}),
            from_statuses=("returned",),
            to_status="dispatched",
            event_type="case.dispatched",
            request=DepartmentRequest,
            requires=("reason", "department_code"),
            clocks=REDISPATCH,
        ),
        # …overruled: back to the same department, its clocks going on where the return stopped them.
        ActionSpec(
            name="overrule_return",
            label="驳回退回",
            roles=frozenset({"dispatcher"}),
            from_statuses=("returned",),
            to_status=None,  # the status it was returned from (the rule says which)
            event_type="case.return_overruled",
            requires=("reason",),
            clocks=Clocks(completes=ARBITRATE, release=True),
        ),
        ActionSpec(
            name="transfer",
            label="转派",
            roles=frozenset({"dispatcher"}),
            from_statuses=("dispatched",),
            to_status="dispatched",
            event_type="case.dispatched",
            request=DepartmentRequest,
            requires=("department_code",),
            clocks=REDISPATCH,
        ),
        ActionSpec(
            name="escalate",
            label="上报",
            roles=frozenset({"dispatcher", "supervisor", "system"}),
            from_statuses=("triaged", "dispatched", "returned", *WORKING),
            to_status="escalated",
            event_type="case.escalated",
            requires=("reason",),
            clocks=Clocks(stop_all=True),
        ),
        ActionSpec(
            name="request_extension",
            label="申请延期",
            roles=frozenset({"handler"}),
            from_statuses=WORKING,
            to_status=None,
            event_type="case.extension_requested",
            request=MinutesRequest,
            requires=("reason", "minutes"),
            lead_only=True,
            clocks=Clocks(pause=True),
        ),
        ActionSpec(
            name="approve_extension",
            label="同意延期",
            roles=frozenset({"dispatcher", "supervisor"}),
            from_statuses=WORKING,
            to_status=None,
            event_type="case.extension_approved",
            request=MinutesRequest,
            requires=("minutes",),
            clocks=Clocks(resume=True),
        ),
        ActionSpec(
            name="refuse_extension",
            label="驳回延期",
            roles=frozenset({"dispatcher", "supervisor"}),
            from_statuses=WORKING,
            to_status=None,
            event_type="case.extension_refused",
            requires=("reason",),
            clocks=Clocks(resume=True),
        ),
        # 待补充: the department needs more from the reporter; its clock waits for the answer.
        ActionSpec(
            name="await_reporter",
            label="待补充",
            roles=frozenset({"handler"}),
            from_statuses=WORKING,
            to_status=None,
            event_type="case.awaiting_reporter",
            requires=("reason",),
            clocks=Clocks(pause=True),
        ),
        ActionSpec(
            name="reporter_replied",
            label="群众已补充",
            roles=frozenset({"dispatcher", "handler"}),
            from_statuses=WORKING,
            to_status=None,
            event_type="case.reporter_replied",
            request=ReplyRequest,
            clocks=Clocks(resume=True),
        ),
        # 改类: the right category, so the right department (a new round of clocks).
        ActionSpec(
            name="reclassify",
            label="改类",
            roles=frozenset({"dispatcher"}),
            from_statuses=OPEN,
            to_status="dispatched",
            event_type="case.dispatched",
            request=ReclassifyRequest,
            requires=("category",),
            clocks=REDISPATCH,
            corrects_triage=True,
        ),
        ActionSpec(
            name="merge",
            label="合并",
            roles=frozenset({"dispatcher"}),
            from_statuses=OPEN,
            to_status="merged",
            event_type="case.merged",
            request=MergeRequest,
            requires=("into_case_id",),
            other_case="into_case_id",
            clocks=Clocks(stop_all=True),
        ),
        ActionSpec(
            name="reopen",
            label="重新办理",
            roles=frozenset({"dispatcher", "grid_worker", "supervisor", "reporter"}),  # 不满意 → 重办
            from_statuses=("resolved", "verified", "closed"),
            to_status="dispatched",
            event_type="case.dispatched",
            requires=("reason",),
            clocks=REDISPATCH,
        ),
        ActionSpec(
            name="cancel",
            label="撤销",
            roles=frozenset({"dispatcher"}),
            from_statuses=OPEN,
            to_status="cancelled",
            event_type="case.cancelled",
            requires=("reason",),
            clocks=Clocks(stop_all=True),
        ),
    )
}


def clocks_of(event_type: str) -> Clocks | None:
    """The clock effect of a case event type (every action published as that type agrees)."""
    return next((spec.clocks for spec in ACTIONS.values() if spec.event_type == event_type), None)


# Every case step but dispatching has the same payload; its event type says which step it is.
CASE_TRANSITION_TYPES = tuple(sorted({spec.event_type for spec in ACTIONS.values()} - {"case.dispatched"}))
