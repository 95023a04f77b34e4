"""Versioned event envelope and payload models.

Every message on a GridLink topic is one `Event`: a frozen envelope (id, type, schema version,
time, producer, jurisdiction, correlation id, key) around a typed payload. Additive changes add
optional fields under the same version; a breaking change adds a new (type, version) pair that
consumers accept before producers switch to it.
"""

import builtins
import json
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

# Every case step but dispatching has the CaseTransitioned shape; its type names the step, one per
# case action (shared.case_actions is the one place they are declared).
from shared.case_actions import CASE_TRANSITION_TYPES


def utcnow() -> datetime:
    return datetime.now(UTC)


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


P = TypeVar("P", bound=Payload)


class IncomingPhoto(Payload):
    """A photo sent with a report (multipart), parked by intake in its incoming bucket for media to
    validate, store as evidence and remove."""

    object_key: str
    filename: str | None = None
    content_type: str | None = None
    size_bytes: int


class ReportPlace(Payload):
    """Where a report is, as intake decided it once: consumers use it as it is and never place the
    report again."""

    # The most precise division the report is in: its village (12 digits) once it has a grid, else
    # the division the intake instance serves (an address only: a grid worker will locate it).
    division_code: str
    town_code: str | None = None  # 9 digits
    village_code: str | None = None  # 12 digits
    grid_code: str | None = None  # 15 digits
    lat: float | None = None
    lng: float | None = None
    # The datum of lat/lng: always WGS-84, the grids' datum (intake converts GCJ-02 input first).
    datum: Literal["wgs84"] = "wgs84"


class ReportSubmittedFacts(Payload):
    """What every version of report.submitted says besides where the report is."""

    report_id: UUID
    case_id: UUID
    description: str
    category: str | None = None
    channel: str
    reporter_phone_masked: str | None = None
    media_ids: list[UUID] = []
    submitted_at: datetime
    # When the reporter saw the problem, when the report says so (the loop's discovered→reported).
    seen_at: datetime | None = None
    # Added by intake's triage (issue 5), all optional. A report without coordinates carries its
    # address and needs_locating.
    priority: str | None = None  # urgent | normal, from the text (danger cues) and the category
    confidence: float | None = None  # triage's probability of `category` when triage chose it
    category_source: str | None = None  # reporter | triage
    needs_manual_triage: bool = False  # low confidence: the grid centre (grid_center) classifies it
    # The triage model that judged the text (issue 17); optional, so older consumers and events agree.
    triage_model_version: str | None = None
    address: str | None = None  # as the reporter gave it
    needs_locating: bool = False  # the grid worker must find the place
    case_no: str | None = None  # the number reporters quote to follow their case (我要查询)
    # No longer published: how to reach the reporter travels as reporter.contact_given on the private
    # gridlink.reporter-contacts topic (shared.topics.REPORTER_CONTACTS). Still read from the events
    # published before, so their reporters keep hearing about their cases.
    reporter_openid: str | None = None  # official-account openid
    reporter_wecom_userid: str | None = None  # WeCom user id
    reporter_phone_encrypted: str | None = None  # shared.phones.phone_token
    incoming_photos: list[IncomingPhoto] = []
    # Photos the channel holds (WeChat PicUrl, an Open311 media_url): media fetches them from allowed hosts.
    photo_urls: list[str] = []


class ReportSubmitted(ReportSubmittedFacts):
    """A report was accepted by intake and is durable; a case id is reserved for it (v2: its place
    is one `ReportPlace`, decided by intake)."""

    place: ReportPlace


class ReportSubmittedV1(ReportSubmittedFacts):
    """report.submitted as first published, still read: the place in loose fields. Read it through
    `submitted_report`, which gives every version as the current one."""

    lat: float | None = None  # always WGS-84
    lng: float | None = None
    grid_code: str | None = None
    village_code: str | None = None  # 12 digits
    town_code: str | None = None  # 9 digits

    def upgraded(self, *, instance_code: str) -> ReportSubmitted:
        """This report as v2. A v1 envelope's jurisdiction_code was intake's own division: the place
        of a report intake could not put in a grid."""
        place = ReportPlace(
            division_code=self.village_code or self.town_code or instance_code,
            town_code=self.town_code,
            village_code=self.village_code,
            grid_code=self.grid_code,
            lat=self.lat,
            lng=self.lng,
        )
        facts = self.model_dump(include=set(ReportSubmittedFacts.model_fields))
        return ReportSubmitted(**facts, place=place)


class CaseFacts(Payload):
    """What every case event says about the case after it, so a case's history (and its current
    state) can be rebuilt from the case topic alone. Fields added after v1 are optional."""

    case_id: UUID
    report_id: UUID
    seq: int = 0  # position in the case's own history, 1-based; 0 in events from before it existed
    status: str = "dispatched"
    jurisdiction_code: str | None = None  # the division the problem is in
    grid_code: str | None = None  # and its grid (网格), when known
    owner_code: str | None = None  # the dispatch centre (county/town/village) that owns the case
    level: str | None = None
    category: str
    category_name: str
    priority: str
    department_code: str  # lead department (主办)
    department_name: str
    co_department_codes: list[str] = []  # co-handling departments (协办)
    description: str
    lat: float | None = None
    lng: float | None = None
    case_no: str | None = None  # the human case number intake gave the report (None before it existed)
    address: str | None = None  # the place as the reporter gave it (None when they gave none)
    # When a grid worker checked it on site (现场核实): the queues show it, and a department
    # integrating through the topic sees that the problem was confirmed where it is.
    checked_at: datetime | None = None


class CaseDispatched(CaseFacts):
    """A case was sent to a department (派单): first dispatch, transfer (转派), reopen, or arrival
    at a parent level after escalation (上报). Starts the acknowledgement clock."""

    responsibility_list_version: str
    rule: str
    dispatched_at: datetime
    action: str = "dispatch"  # dispatch | transfer | reopen | escalate
    actor: str = "system:dispatch"
    reason: str | None = None
    recurrence_of: UUID | None = None  # an earlier case for the same problem at the same place (回潮)


class CaseTransitioned(CaseFacts):
    """Any other step of a case's life (接单, 办结, 回退, 延期, 上报…); `type` names the step."""

    action: str
    from_status: str
    actor: str
    reason: str | None = None
    detail: dict[str, Any] = {}
    at: datetime


class SlaBreached(Payload):
    """A case deadline passed without the stage being completed (督办): to the supervisor, the
    parent level's dispatch and the department's score."""

    case_id: UUID
    stage: str
    department_code: str
    started_at: datetime
    due_at: datetime
    # Added after v1 (optional): what the case is and where, for notifications and scores.
    category: str | None = None
    priority: str | None = None
    jurisdiction_code: str | None = None
    owner_code: str | None = None
    level: str | None = None
    case_no: str | None = None  # the human case number, for messages people read
    fired_at: datetime | None = None


class SlaWarning(Payload):
    """A stage has used `warning_ratio` of its time (催办), repeated every reminder interval."""

    case_id: UUID
    stage: str
    department_code: str
    started_at: datetime
    due_at: datetime
    reminder: int  # 1 for the first warning
    category: str | None = None
    priority: str | None = None
    jurisdiction_code: str | None = None
    owner_code: str | None = None
    level: str | None = None
    case_no: str | None = None  # the human case number, for messages people read
    fired_at: datetime


class SlaNoticeIssued(Payload):
    """通报: one department missed `breaches` deadlines (督办) within `days` days, the repeated-breach
    count of the SLA policy: the county leadership group and the department's head are told, and it
    stands on the supervision list. At most one per department in `days` days."""

    notice_id: UUID
    department_code: str
    breaches: int  # missed deadlines within the window, this one included
    days: int
    since: datetime  # the window's start
    issued_at: datetime
    case_ids: list[UUID] = []  # the cases whose deadlines were missed, oldest first
    case_nos: list[str] = []


class MediaStored(Payload):
    """A media object passed validation and is stored (content-addressed by SHA-256)."""

    media_id: UUID
    sha256: str
    content_type: str
    size_bytes: int
    object_key: str
    filename: str | None = None
    # Optional additions (issue 6): what the content is and the evidence its EXIF carries.
    kind: str | None = None  # image | video | audio
    upload_id: UUID | None = None  # the presigned upload it came through, if any
    captured_at: datetime | None = None  # EXIF capture time
    latitude: float | None = None  # EXIF GPS (WGS-84)
    longitude: float | None = None


class MediaRejected(Payload):
    """An upload failed validation by content and was not stored; the reason says why."""

    upload_id: UUID
    # empty | too-large | unsupported-type | type-mismatch | corrupt | decompression-bomb
    # | size-mismatch | sha256-mismatch | upload-expired
    reason: str
    detail: str
    filename: str | None = None
    declared_content_type: str | None = None
    detected_content_type: str | None = None
    size_bytes: int | None = None


class MediaAttached(Payload):
    """Media was attached to a case as evidence of its state before or after rectification (整改前/后)."""

    media_id: UUID
    case_id: UUID
    role: str  # before | after
    content_type: str
    sha256: str
    # Evidence checks that failed (flagged, never rejected): far_from_report, taken_long_before_report,
    # taken_before_report (an "after" photo older than the report).
    flags: list[str] = []
    attached_at: datetime


class MediaComparisonReady(Payload):
    """The 整改前后对比 image of a resolved case (its newest before and after photos side by side) was
    made, so the reporter is shown it where they reported. `url` is a download link for readers of
    this topic, valid until `url_expires_at`."""

    case_id: UUID
    before_media_id: UUID
    after_media_id: UUID
    object_key: str
    url: str
    url_expires_at: datetime
    generated_at: datetime


class NotificationSent(Payload):
    """A notification reached its channel and the channel confirmed it."""

    notification_id: UUID
    case_id: UUID | None = None
    channel: str
    target: str
    template: str


class NotificationFailed(Payload):
    """A notification was given up after its retries; the reason says why."""

    notification_id: UUID
    case_id: UUID | None = None
    channel: str
    target: str
    template: str
    reason: str


class MessageReceived(Payload):
    """A resident or staff message reached us through a WeCom app or official-account callback."""

    message_id: UUID
    source: str  # wecom_app | wechat_mp
    msg_id: str  # the platform's MsgId, unique per source
    from_user: str  # WeCom userid or official-account openid
    to_user: str
    msg_type: str  # text | image | location
    content: str | None = None
    pic_url: str | None = None
    media_id: str | None = None
    lat: float | None = None
    lng: float | None = None
    # Location messages carry GCJ-02 (Tencent maps); convert before any point-in-grid test.
    datum: str | None = None
    label: str | None = None
    agent_id: str | None = None
    sent_at: datetime
    # Added after v1 (optional): the WeCom group (its chatid, from the 智能机器人 callback) the message
    # was posted in, and the short-lived URL through which a reply reaches that conversation.
    group_id: str | None = None
    response_url: str | None = None


class ReportAttached(Payload):
    """一事多报: a report of a problem that already has an open case was attached to that case
    instead of opening a second one; its reporter follows that case."""

    report_id: UUID
    case_id: UUID
    case_no: str | None = None
    description: str
    category: str
    lat: float | None = None
    lng: float | None = None
    distance_m: float | None = None  # from the case's first report
    channel: str
    reporter_phone_masked: str | None = None
    media_ids: list[UUID] = []
    incoming_photos: list[IncomingPhoto] = []
    # Photos the channel holds (WeChat PicUrl, an Open311 media_url): media fetches them from allowed hosts.
    photo_urls: list[str] = []
    submitted_at: datetime


class ReportLocated(Payload):
    """A grid worker placed a report that came with only an address (or none): its point and grid."""

    report_id: UUID
    case_id: UUID
    lat: float  # WGS-84
    lng: float
    grid_code: str
    village_code: str
    town_code: str
    located_by: str
    located_at: datetime


class ReporterContactGiven(Payload):
    """How to tell a report's reporter about their case, for notify alone (on the private
    gridlink.reporter-contacts topic): the channel's user id, or the phone as ciphertext
    (shared.phones.phone_token, which names its key), or the WeCom group they reported in. At least
    one is set."""

    report_id: UUID
    case_id: UUID
    openid: str | None = None  # official-account openid
    wecom_userid: str | None = None  # WeCom user id
    phone_encrypted: str | None = None
    # Added after v1 (optional): the report was attached to an open case on the same problem
    # (一事多报, report.attached); its reporter follows that case too.
    attached: bool = False
    # Added after v1 (optional): the secret of the report's one-tap 办结 confirmation link (intake's
    # /h5/confirm), which notify puts in the 回访 message to this reporter alone.
    confirm_token: str | None = None
    # Added after v1 (optional): the WeCom group (chatid) a report made by @-mentioning the bot came
    # from, so the answers go back to that group; and the case number the reporter is told at once.
    group_id: str | None = None
    case_no: str | None = None


class QueryCodeRequested(Payload):
    """A reporter asked for a one-time code to see their cases (我要查询); notify texts it to them.
    The phone travels encrypted (AES-GCM, phone_encryption_key; nonce ‖ ciphertext, base64)."""

    request_id: UUID
    phone_encrypted: str
    phone_masked: str
    code: str  # six digits, valid until expires_at, one use
    expires_at: datetime


class ReporterVerified(Payload):
    """A reporter proved they own the phone they reported with (they entered a 我要查询 code texted
    to it), so notify may text them updates of the cases they opened with it. Before this, a phone
    typed into a report is anyone's claim and gets no case SMS. The phone is named only by intake's
    keyed hash (hex); notify needs nothing more, because `case_ids` lists the cases it covers."""

    phone_hash: str
    case_ids: list[UUID]
    verified_at: datetime
    # Added after v1 (optional): every report the phone made, those attached to another's case
    # (一事多报) too, so their reporters may be texted the updates of the case they follow.
    report_ids: list[UUID] = []


# A reporter's answer to the 回访 question: 1 满意, 2 基本满意, 3 不满意.
Rating = Literal["satisfied", "basic", "dissatisfied"]


class ReporterRated(Payload):
    """A reporter answered the 回访 question where they reported (a WeChat group, the official
    account, a WeCom chat) with 1 满意, 2 基本满意 or 3 不满意; dispatch records it as the case's
    回访, and 不满意 sends the case back to be handled again (重办)."""

    report_id: UUID
    case_id: UUID
    rating: Rating
    channel: str  # where they answered (intake's channel of the report)
    rated_at: datetime


class TriageCorrected(Payload):
    """A dispatcher corrected a report's category (or priority); triage learns from it."""

    report_id: UUID | None = None
    case_id: UUID | None = None
    text: str
    category: str
    priority: str | None = None
    previous_category: str | None = None
    corrected_by: str
    corrected_at: datetime


# What staff may ask of a case from WeCom (a template card's button or a command to the AI bot):
# the case actions by name, and `query` (查), which changes nothing.
StaffAction = Literal["acknowledge", "return", "progress", "resolve", "query"]


class StaffCommand(Payload):
    """A member of staff acted on a case from WeCom: a template card's button (接单/退回) or an
    @-mention of the AI bot in a group (接单/进展/办结/查). Dispatch maps the sender to a person of
    its directory and applies the action as that person, exactly as the HTTP action routes do. How
    to answer (the click's response_code, the bot's response_url) stays with notify, keyed by
    `command_id`."""

    command_id: UUID  # one per click or bot message: dispatch acts on it at most once
    source: Literal["card", "bot"]
    wecom_user_id: str  # the sender, as WeCom names them
    case_no: str  # the human case number the card or command names
    action: StaffAction
    text: str | None = None  # 进展's words, 办结's result, 退回's reason
    # Photos sent with the command (办结), parked in the incoming bucket under
    # `staff/<command_id>/<n>`, for media to store as the case's "after" evidence.
    photos: list[IncomingPhoto] = []
    group_id: str | None = None  # the group (chatid) a bot command was posted in
    sent_at: datetime


class StaffPhotosSubmitted(Payload):
    """Dispatch accepted a staff member's 办结 from WeCom but for its photos: media is to store
    them as the case's "after" evidence (media.attached, or media.rejected with the reason, both
    with the command id as correlation id), then dispatch resolves the case with them."""

    command_id: UUID
    case_id: UUID
    report_id: UUID
    photos: list[IncomingPhoto]
    submitted_at: datetime


class StaffCommandAnswered(Payload):
    """Dispatch's answer to a staff command, in Chinese, for notify to show where it was asked: the
    card's button replaced (已接单 · 张三 10:03), or a reply in the group."""

    command_id: UUID
    source: Literal["card", "bot"]
    case_no: str
    action: str
    outcome: Literal["done", "refused"]
    text: str  # the whole answer, for people (Simplified Chinese)
    button_text: str | None = None  # the card's short replacement text (≤ 16 characters)
    case_id: UUID | None = None  # None for a case number dispatch does not know
    actor_name: str | None = None
    answered_at: datetime


class DirectoryRole(Payload):
    role: str
    jurisdiction_code: str
    department_code: str | None = None


class DirectoryPersonSaved(Payload):
    """A person of dispatch's directory (通讯录) as they are now, for notify alone (on the private
    gridlink.directory topic): whom to @ in WeCom and send cards to. Never their mobile."""

    person_id: str
    name: str
    wecom_user_id: str | None = None
    active: bool = True
    roles: list[DirectoryRole] = []
    saved_at: datetime


class DutyShiftAdded(Payload):
    """A shift of a department's duty roster (值班表): who is on duty there and who backs them up."""

    shift_id: UUID
    department_code: str
    jurisdiction_code: str
    starts_at: datetime
    ends_at: datetime
    on_duty: str  # person_id (see directory.person_saved for their WeCom user id)
    backup: str | None = None


class DutyShiftRemoved(Payload):
    """A shift was taken off the roster."""

    shift_id: UUID
    department_code: str
    jurisdiction_code: str
    removed_at: datetime


# (type, schema_version) -> payload model. The one place event types are declared.
PAYLOAD_TYPES: dict[tuple[str, int], type[Payload]] = {
    ("report.submitted", 1): ReportSubmittedV1,
    ("report.submitted", 2): ReportSubmitted,
    ("report.attached", 1): ReportAttached,
    ("report.located", 1): ReportLocated,
    ("triage.corrected", 1): TriageCorrected,
    ("reporter.contact_given", 1): ReporterContactGiven,
    ("query.code_requested", 1): QueryCodeRequested,
    ("reporter.verified", 1): ReporterVerified,
    ("reporter.rated", 1): ReporterRated,
    ("case.dispatched", 1): CaseDispatched,
    **{(event_type, 1): CaseTransitioned for event_type in CASE_TRANSITION_TYPES},
    ("sla.breached", 1): SlaBreached,
    ("sla.warning", 1): SlaWarning,
    ("sla.notice_issued", 1): SlaNoticeIssued,
    ("media.stored", 1): MediaStored,
    ("media.rejected", 1): MediaRejected,
    ("media.attached", 1): MediaAttached,
    ("media.comparison_ready", 1): MediaComparisonReady,
    ("notification.sent", 1): NotificationSent,
    ("notification.failed", 1): NotificationFailed,
    ("message.received", 1): MessageReceived,
    ("staff.command", 1): StaffCommand,
    ("staff.photos_submitted", 1): StaffPhotosSubmitted,
    ("staff.command_answered", 1): StaffCommandAnswered,
    ("directory.person_saved", 1): DirectoryPersonSaved,
    ("duty.shift_added", 1): DutyShiftAdded,
    ("duty.shift_removed", 1): DutyShiftRemoved,
}
# The default type of each payload model; a model shared by several types needs `event_type`.
TYPE_OF_PAYLOAD = {model: key for key, model in reversed(PAYLOAD_TYPES.items())}


class Event(BaseModel):
    """The envelope of every message.

    `jurisdiction_code` is the division the event's subject is in — the report or case it is about —
    so a consumer can filter any topic by place with a prefix match on division codes: a report's
    `ReportPlace.division_code`, a case's `jurisdiction_code`; events about a case's timers,
    notifications or evidence name that case's division too. Only while the subject has no place
    yet, or for subjects that never have one (an inbound WeChat message, a query-code request, an
    upload), is it the division the producing instance serves.
    """

    model_config = ConfigDict(frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    type: str
    schema_version: int
    occurred_at: datetime = Field(default_factory=utcnow)
    producer: str
    jurisdiction_code: str  # where the subject is (see above)
    correlation_id: UUID | None = None
    # Kafka message key: the case id where there is one, so a case's events stay in order.
    key: str
    payload: SerializeAsAny[Payload]

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    # builtins.type: inside Event, `type` names the event's type field.
    def payload_as(self, model: builtins.type[P]) -> P:
        """The payload as the model the handler expects of this event's type; raises MalformedEvent
        when it is another model (parse_event gives each type its registered model, so this means a
        handler is registered for the wrong type)."""
        if not isinstance(self.payload, model):
            raise MalformedEvent(
                f"{self.type} v{self.schema_version} carries {type(self.payload).__name__}, expected {model.__name__}"
            )
        return self.payload


class UnknownEventType(Exception):
    """A well-formed envelope whose (type, version) this consumer does not know: skip, don't fail."""


class MalformedEvent(Exception):
    """Bytes that are not a valid GridLink event: a poison message for the dead-letter topic."""


def new_event(
    payload: Payload,
    *,
    producer: str,
    jurisdiction_code: str,
    key: str,
    correlation_id: UUID | None = None,
    event_type: str | None = None,
) -> Event:
    """Wrap a payload in a fresh envelope of its registered type and version."""
    default_type, version = TYPE_OF_PAYLOAD[type(payload)]
    event_type = event_type or default_type
    if PAYLOAD_TYPES.get((event_type, version)) is not type(payload):
        raise ValueError(f"{event_type} v{version} does not carry {type(payload).__name__}")
    return Event(
        type=event_type,
        schema_version=version,
        producer=producer,
        jurisdiction_code=jurisdiction_code,
        key=key,
        correlation_id=correlation_id,
        payload=payload,
    )


def submitted_report(event: Event) -> ReportSubmitted:
    """The report of a report.submitted event in its current shape (v2), whichever version it came in."""
    if isinstance(event.payload, ReportSubmittedV1):
        return event.payload.upgraded(instance_code=event.jurisdiction_code)
    return event.payload_as(ReportSubmitted)


def parse_event(raw: bytes | str | dict[str, Any]) -> Event:
    """Decode and validate an event; raises MalformedEvent or UnknownEventType."""
    try:
        data = raw if isinstance(raw, dict) else json.loads(raw)
        if not isinstance(data, dict):
            raise MalformedEvent("event is not a JSON object")
        key = (data.get("type"), data.get("schema_version"))
        model = PAYLOAD_TYPES.get(key)  # type: ignore[arg-type]
        if model is None:
            if isinstance(key[0], str) and isinstance(key[1], int):
                raise UnknownEventType(f"{key[0]} v{key[1]}")
            raise MalformedEvent("missing or invalid 'type'/'schema_version'")
        payload = model.model_validate(data.get("payload"))
        return Event.model_validate({**data, "payload": payload})
    except (ValueError, ValidationError) as exc:
        raise MalformedEvent(str(exc)) from exc
