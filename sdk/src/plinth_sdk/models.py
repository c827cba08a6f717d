"""Typed results: frozen dataclasses built from the API's JSON.

Dataclasses rather than pydantic (docs/architecture.md, "The SDK"): the server already validates what it
sends, so the client only needs names and types for editors and type checkers; dataclasses cost no
dependency and no import time (the CLI's budget is 150 ms), and they never refuse an answer because
the API grew a field. Every object keeps the full JSON it came from in `raw`, so a field the SDK does
not know yet is still reachable."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def _get(data: dict, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return default
        data = data.get(key, default)
    return data


@dataclass(frozen=True)
class Membership:
    team: str
    role: str


@dataclass(frozen=True)
class Me:
    username: str
    is_platform_admin: bool
    teams: list[Membership]
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> Me:
        return cls(username=data["username"], is_platform_admin=bool(data.get("is_platform_admin")),
                   teams=[Membership(m["team"], m["role"]) for m in data.get("teams", [])], raw=data)


@dataclass(frozen=True)
class Entity:
    """A catalog entity as the API returns it (a `fields=` projection leaves the rest empty)."""

    kind: str
    namespace: str
    name: str
    title: str | None
    description: str | None
    spec: dict
    metadata: dict
    relations: list[dict]
    status: dict
    raw: dict = field(repr=False, compare=False)

    @property
    def ref(self) -> str:
        """`kind:namespace/name`, lower-case, as the catalog keys it."""
        return f"{self.kind}:{self.namespace}/{self.name}".lower()

    @classmethod
    def from_api(cls, data: dict) -> Entity:
        meta = data.get("metadata") or {}
        return cls(kind=data.get("kind", ""), namespace=meta.get("namespace") or "default",
                   name=meta.get("name", ""), title=meta.get("title"), description=meta.get("description"),
                   spec=data.get("spec") or {}, metadata=meta, relations=data.get("relations") or [],
                   status=data.get("status") or {}, raw=data)


@dataclass(frozen=True)
class Problem:
    """One problem of a descriptor: where (file, line, dotted field) and what."""

    message: str
    source: str | None = None
    line: int | None = None
    field: str | None = None

    @classmethod
    def from_api(cls, data: dict) -> Problem:
        return cls(message=data.get("message", ""), source=data.get("source"), line=data.get("line"),
                   field=data.get("field") or None)

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.source, self.line) if p not in (None, ""))
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}" if where else what


@dataclass(frozen=True)
class Location:
    id: int
    type: str
    target: str
    status: str
    entity_count: int
    error_count: int
    refreshed_at: str | None
    errors: list[Problem]
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> Location:
        return cls(id=data["id"], type=data.get("type", ""), target=data.get("target", ""),
                   status=data.get("status", ""), entity_count=data.get("entityCount", 0),
                   error_count=data.get("errorCount", 0), refreshed_at=data.get("refreshedAt"),
                   errors=[Problem.from_api(e) for e in data.get("errors") or []], raw=data)


@dataclass(frozen=True)
class Token:
    """One of your API tokens. `secret` is set only on the answer that created it (it is not stored)."""

    id: int
    name: str
    prefix: str
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None
    active: bool
    secret: str | None = field(default=None, repr=False)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> Token:
        return cls(id=data["id"], name=data.get("name", ""), prefix=data.get("prefix", ""),
                   created_at=data.get("createdAt", ""), last_used_at=data.get("lastUsedAt"),
                   expires_at=data.get("expiresAt"), revoked_at=data.get("revokedAt"),
                   active=bool(data.get("active")), secret=data.get("secret"), raw=data)


@dataclass(frozen=True)
class Plan:
    """What a registration, refresh or dry run did (or would do)."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    unchanged: int
    errors: list[Problem]
    dry_run: bool
    location: Location | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> Plan:
        loc = data.get("location")
        return cls(added=data.get("added", []), changed=data.get("changed", []), removed=data.get("removed", []),
                   unchanged=data.get("unchanged", 0), errors=[Problem.from_api(e) for e in data.get("errors", [])],
                   dry_run=bool(data.get("dryRun")), location=Location.from_api(loc) if loc else None, raw=data)


@dataclass(frozen=True)
class ValidationResult:
    valid: bool
    documents: int
    errors: list[Problem]
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> ValidationResult:
        return cls(valid=bool(data.get("valid")), documents=data.get("documents", 0),
                   errors=[Problem.from_api(e) for e in data.get("errors", [])], raw=data)


@dataclass(frozen=True)
class SearchHit:
    key: str
    kind: str
    name: str
    title: str
    owner: str
    lifecycle: str
    type: str
    tags: list[str]
    url: str
    snippet: str
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> SearchHit:
        return cls(key=data.get("key", ""), kind=data.get("kind", ""), name=data.get("name", ""),
                   title=data.get("title") or "", owner=data.get("owner") or "", lifecycle=data.get("lifecycle") or "",
                   type=data.get("type") or "", tags=data.get("tags") or [], url=data.get("url", ""),
                   snippet=data.get("snippet") or "", raw=data)


@dataclass(frozen=True)
class Decision:
    user: str
    decision: str
    comment: str
    stage: int
    at: str


@dataclass(frozen=True)
class ApprovalRequest:
    id: int
    action: str
    target: str
    state: str
    state_label: str
    requester: str
    params: dict
    justification: str
    url: str
    decisions: list[Decision]
    raw: dict = field(repr=False, compare=False)

    FINAL_STATES = frozenset({"executed", "rejected", "withdrawn", "expired", "blocked", "changes-requested",
                              "execution-failed"})

    @property
    def done(self) -> bool:
        """Nothing more happens without someone acting (a final or a waiting-for-the-requester state)."""
        return self.state in self.FINAL_STATES

    @classmethod
    def from_api(cls, data: dict) -> ApprovalRequest:
        return cls(id=data["id"], action=data.get("action", ""), target=data.get("target", ""),
                   state=data.get("state", ""), state_label=data.get("stateLabel", ""),
                   requester=data.get("requester", ""), params=data.get("params") or {},
                   justification=data.get("justification") or "", url=data.get("url", ""),
                   decisions=[Decision(d["user"], d["decision"], d.get("comment", ""), d.get("stage", 0), d.get("at", ""))
                              for d in data.get("decisions") or []], raw=data)


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: str
    actor: str
    action: str
    target: str
    outcome: str | None
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> AuditEvent:
        return cls(seq=data["seq"], at=str(data.get("at", "")), actor=data.get("actor", ""),
                   action=data.get("action", ""), target=data.get("target", ""), outcome=data.get("outcome"),
                   raw=data)


@dataclass(frozen=True)
class Template:
    ref: str
    name: str
    title: str
    description: str
    type: str
    owner: str
    tags: list[str]
    parameters: list[dict]
    runnable: bool
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> Template:
        return cls(ref=data["ref"], name=data.get("name", ""), title=data.get("title") or "",
                   description=data.get("description") or "", type=data.get("type") or "",
                   owner=data.get("owner") or "", tags=data.get("tags") or [],
                   parameters=data.get("parameters") or [], runnable=bool(data.get("runnable")), raw=data)


@dataclass(frozen=True)
class LogEntry:
    at: str
    step: str
    level: str
    message: str

    def __str__(self) -> str:
        return f"[{self.step or '-'}] {self.message}"


@dataclass(frozen=True)
class Run:
    id: str
    template: str  # "" when the caller may not see the template (the API's templateHidden)
    status: str
    dry_run: bool
    error: str
    output: dict
    steps: list[dict]
    log: list[LogEntry]
    url: str
    raw: dict = field(repr=False, compare=False)

    # "cancelled": someone cancelled it (queued: it never started; running: it stopped before a step).
    FINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})

    @property
    def done(self) -> bool:
        return self.status in self.FINAL_STATES

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @classmethod
    def from_api(cls, data: dict) -> Run:
        return cls(id=data["id"], template=data.get("template") or "", status=data.get("status", ""),
                   dry_run=bool(data.get("dryRun")), error=data.get("error") or "", output=data.get("output") or {},
                   steps=data.get("steps") or [],
                   log=[LogEntry(str(e.get("at", "")), e.get("step") or "", e.get("level", ""), e.get("message", ""))
                        for e in data.get("log") or []], url=data.get("url", ""), raw=data)


@dataclass(frozen=True)
class DocsSite:
    entity_ref: str
    status: str
    built_at: str | None
    page_count: int
    url: str
    errors: list
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> DocsSite:
        return cls(entity_ref=data["entityRef"], status=data.get("status", ""), built_at=data.get("builtAt"),
                   page_count=data.get("pageCount", 0), url=data.get("url", ""), errors=data.get("errors") or [],
                   raw=data)


@dataclass(frozen=True)
class DocsPage:
    entity_ref: str
    path: str
    title: str
    html: str
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> DocsPage:
        return cls(entity_ref=data["entityRef"], path=data.get("path", ""), title=data.get("title", ""),
                   html=data.get("html", ""), raw=data)


@dataclass(frozen=True)
class FeedbackItem:
    """One piece of feedback: a "Was this useful?" answer (entity, docs page, template run) or an idea for
    the portal, with the owning team's status and answer."""

    id: int
    kind: str
    target: str
    target_label: str
    owner_team: str | None
    author: str
    useful: bool | None
    title: str
    comment: str
    status: str
    answer: str
    votes: int
    url: str
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> FeedbackItem:
        return cls(id=data["id"], kind=data.get("kind", ""), target=data.get("target", ""),
                   target_label=data.get("targetLabel", ""), owner_team=data.get("ownerTeam"),
                   author=data.get("author", ""), useful=data.get("useful"), title=data.get("title", ""),
                   comment=data.get("comment", ""), status=data.get("status", ""), answer=data.get("answer", ""),
                   votes=data.get("votes", 0), url=data.get("url", ""), raw=data)


@dataclass(frozen=True)
class RoadmapEntry:
    """A roadmap row: the item and its score's parts (score = votes × weight + active users)."""

    rank: int
    item: FeedbackItem
    votes: int
    asking_teams: list[str]
    active_users: int
    score: int
    voted: bool
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> RoadmapEntry:
        return cls(rank=data.get("rank", 0), item=FeedbackItem.from_api(data["item"]), votes=data.get("votes", 0),
                   asking_teams=list(data.get("askingTeams") or []), active_users=data.get("activeUsers", 0),
                   score=data.get("score", 0), voted=bool(data.get("voted")), raw=data)


@dataclass(frozen=True)
class DeploymentEvent:
    """A reported deployment event and the deployment's state after it."""

    id: int
    ref: str  # the Deployment entity
    model: str
    version: str
    environment: str
    status: str  # the deployment's current status (an older event leaves it as it was)
    event_status: str
    endpoint: str
    platform: str
    drift: bool  # live in a governed environment without an executed approval
    replayed: bool
    url: str
    raw: dict = field(repr=False, compare=False)

    @classmethod
    def from_api(cls, data: dict) -> DeploymentEvent:
        dep = data.get("deployment") or {}
        return cls(id=_get(data, "event", "id", default=0), ref=dep.get("ref", ""), model=dep.get("model", ""),
                   version=dep.get("version", ""), environment=dep.get("environment", ""),
                   status=dep.get("status", ""), event_status=_get(data, "event", "status", default=""),
                   endpoint=dep.get("endpoint", ""), platform=dep.get("platform", ""),
                   drift=bool(dep.get("drift")), replayed=bool(data.get("replayed")), url=dep.get("url", ""),
                   raw=data)
