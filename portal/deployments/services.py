"""Writes about where model versions serve: reported deployment events (CD pipelines), deployments
derived from MLflow aliases, and compliance drift. Each function runs in one transaction and writes
its audit events; the Deployment catalog entity is written through `catalog.services` in the same
transaction, so search, visibility and facets follow the row."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from catalog import services as catalog_services
from catalog.descriptors.errors import DescriptorError
from catalog.descriptors.refs import parse_ref
from catalog.ingest.reader import VISIBILITY_ANNOTATION
from catalog.models import Entity, ModelVersion
from portal.accounts import permissions
from portal.core import urlparts
from portal.core.audit import audit_record
from portal.governance import policy
from portal.governance.models import ActionType, ApprovalRequest
from portal.governance.models import State as RequestState

from . import conf
from .models import Deployment, DeploymentEvent, Drift, Source, Status

log = logging.getLogger("plinth.deployments")
SLUG = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
VERSION = re.compile(r"^[1-9][0-9]{0,9}$")
MAX_KEY = 100
SERVING = frozenset({Status.LIVE})  # what "serves" means for drift: live traffic


class InvalidEvent(Exception):
    """A reported event that cannot be stored: `field` names where, `message` what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class ReplayConflict(Exception):
    """The idempotency key was used before for a different event."""


@dataclass(frozen=True)
class Report:
    """One reported state of a model version in an environment, already checked."""

    model: Entity
    version: str
    environment: str
    status: str
    endpoint: str
    platform: str
    occurred_at: datetime
    served_by: str = ""
    time_given: bool = True  # False: "now" — a retry without a time is the same event

    def fingerprint(self) -> str:
        fields = [self.model.ref, self.version, self.environment, self.status, self.endpoint, self.platform,
                  self.occurred_at.isoformat() if self.time_given else "", self.served_by]
        return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


# -- checking a reported event ------------------------------------------------------------------


def _text(value, field: str, *, max_len: int, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise InvalidEvent(field, "is required")
        return ""
    if not isinstance(value, str):
        raise InvalidEvent(field, f"must be a string, got {type(value).__name__}")
    _storable(value, field)
    if len(value) > max_len:
        raise InvalidEvent(field, f"must be at most {max_len} characters")
    if any(ord(c) < 32 or c == "\x7f" for c in value):
        raise InvalidEvent(field, "must not contain control characters")
    return value.strip()


def _storable(value: str, field: str) -> None:
    """JSON may carry a lone surrogate (\\ud800) that no database can store as UTF-8: refused up front."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidEvent(field, "must be valid Unicode text (it contains a lone surrogate such as \\ud800)") from None


def _model(actor, raw) -> Entity:
    ref_text = _text(raw, "model", max_len=200)
    try:
        ref = parse_ref(ref_text, default_kind="model")
    except ValueError as exc:
        raise InvalidEvent("model", str(exc)) from None
    if ref.kind != "model":
        raise InvalidEvent("model", f"{ref_text!r} must refer to a model, not a {ref.kind}")
    entity = Entity.objects.filter(ref=ref.key()).select_related("owner_team").first()
    if entity is None or not permissions.can(actor, permissions.Action.VIEW, entity):
        # A private model of another team answers exactly like a missing one.
        raise Http404(f"model: no model {ref.key()}")
    return entity


def _version(model: Entity, raw) -> ModelVersion:
    version = _text(raw if not isinstance(raw, int) or isinstance(raw, bool) else str(raw), "version", max_len=20)
    if not VERSION.match(version):
        raise InvalidEvent("version", f"{version!r} is not a model version number")
    row = ModelVersion.objects.filter(entity=model, version=version).first()
    if row is None:
        known = sorted(ModelVersion.objects.filter(entity=model).values_list("version_number", flat=True))
        hint = f" (known: {', '.join(map(str, known[-20:]))})" if known else " (no versions synced from MLflow yet)"
        raise InvalidEvent("version", f"{model.name} has no version {version}{hint}")
    return row


def _choice(raw, field: str, allowed) -> str:
    value = _text(raw, field, max_len=40)
    if value not in allowed:
        raise InvalidEvent(field, f"{value!r} is not one of: {', '.join(allowed)}")
    return value


def endpoint_problem(url: str) -> str | None:
    """An endpoint is an absolute http(s) URL without credentials (they would be stored and shown)."""
    parts = urlparts.split(url)
    if parts is None:
        return "is not a valid URL (check the brackets and the host name)"
    if parts.scheme not in ("http", "https"):
        return f"must be an http or https URL, got {(parts.scheme + ':') if parts.scheme else 'a relative URL'}"
    if not parts.hostname:
        return "must include a host"
    if parts.username or parts.password:
        return "must not carry credentials (user:password@)"
    if any(c.isspace() for c in url):
        return "must not contain whitespace"
    try:
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        return "has an invalid port"
    return None


def _endpoint(raw) -> str:
    url = _text(raw, "endpoint", max_len=2000, required=False)
    if url and (problem := endpoint_problem(url)):
        raise InvalidEvent("endpoint", problem)
    return url


def _time(raw) -> datetime:
    now = timezone.now()
    if raw is None or raw == "":
        return now
    if not isinstance(raw, str) or len(raw) > 40:
        raise InvalidEvent("time", "must be an ISO 8601 date-time string with a UTC offset")
    _storable(raw, "time")
    try:
        moment = parse_datetime(raw.strip())
    except ValueError:
        moment = None
    if moment is None:
        raise InvalidEvent("time", f"{raw[:40]!r} is not an ISO 8601 date-time (e.g. 2026-12-02T10:00:00Z)")
    if timezone.is_naive(moment):
        raise InvalidEvent("time", "must carry a UTC offset (Z or +hh:mm)")
    if moment > now + timedelta(seconds=int(conf.get("MAX_FUTURE_SECONDS"))):
        raise InvalidEvent("time", f"{raw[:40]} is in the future")
    if moment < now - timedelta(days=int(conf.get("MAX_AGE_DAYS"))):
        raise InvalidEvent("time", f"{raw[:40]} is older than {conf.get('MAX_AGE_DAYS')} days")
    return moment


def _served_by(actor, raw, namespace: str) -> str:
    text = _text(raw, "servedBy", max_len=200, required=False)
    if not text:
        return ""
    try:
        ref = parse_ref(text, default_kind="component", default_namespace=namespace)
    except ValueError as exc:
        raise InvalidEvent("servedBy", str(exc)) from None
    if ref.kind not in ("component", "api"):
        raise InvalidEvent("servedBy", f"must refer to a component or an API, not a {ref.kind}")
    target = Entity.objects.filter(ref=ref.key()).only("owner_team_id", "visibility").first()
    if target is None or not permissions.can(actor, permissions.Action.VIEW, target):
        raise InvalidEvent("servedBy", f"no component or API {ref.key()}")
    return ref.key()


def check_event(*, actor, body: dict) -> tuple[Report, str]:
    """The reported event (and its idempotency key) or InvalidEvent / Http404 / PermissionDenied.
    Reads only: nothing is written before every field is known to be good."""
    model = _model(actor, body.get("model"))
    if not permissions.may_report_deployment(actor, model):
        from django.core.exceptions import PermissionDenied

        raise PermissionDenied("Only members, maintainers and admins of the model's team (and platform "
                               "admins) may report its deployments")
    version = _version(model, body.get("version"))
    report = Report(
        model=model, version=version.version,
        environment=_choice(body.get("environment"), "environment", list(conf.get("ENVIRONMENTS"))),
        status=_choice(body.get("status"), "status", list(Status.values)),
        endpoint=_endpoint(body.get("endpoint")),
        platform=_platform(body.get("platform")),
        occurred_at=_time(body.get("time")),
        served_by=_served_by(actor, body.get("servedBy"), model.namespace),
        time_given=body.get("time") not in (None, ""),
    )
    key = _text(body.get("idempotencyKey"), "idempotencyKey", max_len=MAX_KEY, required=False)
    return report, key


def _platform(raw) -> str:
    value = _text(raw, "platform", max_len=40)
    if not SLUG.match(value):
        raise InvalidEvent("platform", f"{value!r} must be a lower-case name (letters, digits, -), e.g. kserve")
    return value


# -- writing --------------------------------------------------------------------------------------


def deployment_entity_name(model: Entity, version: str, environment: str, *, hashed: bool = False) -> str:
    """`<model>-v<version>-<environment>`. A name too long for the catalog (63 characters) keeps its head
    and gains a short hash of the model's ref, so two models sharing that head stay apart (as
    lineage.services.entity_name does); a name that fits is left as it is unless `hashed`."""
    suffix = f"-v{version}-{environment}"
    if not hashed and len(model.name) + len(suffix) <= 63:
        return model.name + suffix
    digest = hashlib.sha256(model.ref.encode()).hexdigest()[:8]
    return f"{model.name[: 63 - len(suffix) - 9].rstrip('-_.')}-{digest}{suffix}"


def _entity_name(dep: Deployment, model: Entity, actor) -> str:
    """The name of the deployment's entity: the one it has (renaming would leave the old entity behind),
    or for a new deployment the first of its two possible names that no other deployment holds, nor an
    entity a location defines that `actor` may not see. Such an entity (another team's private
    Deployment descriptor) must read exactly like a missing one: the event is stored under the hashed
    name instead of refused, as it would be refused (400, "its descriptor wins") for one they may see."""
    if dep.entity_id is not None:
        return dep.entity.name
    names = [deployment_entity_name(model, dep.version, dep.environment, hashed=hashed) for hashed in (False, True)]
    refs = {f"deployment:{model.namespace}/{name}".lower(): name for name in names}
    taken = set(Deployment.objects.filter(entity__ref__in=list(refs)).values_list("entity__ref", flat=True))
    taken.update(ref for ref, team_id, visibility in Entity.objects.filter(
        ref__in=list(refs), location__isnull=False).values_list("ref", "owner_team_id", "visibility")
        if not permissions.may_see_owned(actor, team_id, visibility))
    for ref, name in refs.items():
        if ref not in taken:
            return name
    raise InvalidEvent("model", f"the catalog names of this deployment ({', '.join(names)}) are used by other "
                                "deployments; a model with a distinct name avoids this")


def _descriptor(dep: Deployment, model: Entity, name: str) -> dict:
    annotations = {VISIBILITY_ANNOTATION: "private"} if model.visibility == "private" else {}
    spec = {"model": model.ref, "version": dep.version, "environment": dep.environment, "status": dep.status,
            "lifecycle": model.lifecycle or "experimental", "type": "model-serving"}
    if model.owner_ref:
        spec["owner"] = model.owner_ref
    if model.system_ref:
        spec["system"] = model.system_ref
    for key, value in (("endpoint", dep.endpoint), ("platform", dep.platform), ("servedBy", dep.served_by_ref)):
        if value:
            spec[key] = value
    return {
        "apiVersion": "plinth.dev/v1alpha1", "kind": "Deployment",
        "metadata": {"name": name,
                     "namespace": model.namespace,
                     "title": f"{model.display_name} v{dep.version} in {dep.environment}",
                     "tags": ["deployment", dep.environment], "annotations": annotations},
        "spec": spec,
    }


def _record(report: Report, *, source: str, actor, actor_label: str, key: str = "") -> DeploymentEvent:
    """Store one event, move the deployment's current state when the event is its newest, write the
    Deployment entity and the audit event. Inside the caller's transaction."""
    model = report.model
    dep = (Deployment.objects.select_for_update().select_related("entity")
           .filter(model=model, version=report.version, environment=report.environment).first())
    newest = dep is None or report.occurred_at >= dep.last_event_at
    if dep is None:
        dep = Deployment(model=model, version=report.version, environment=report.environment,
                         status_since=report.occurred_at, last_event_at=report.occurred_at)
    if newest:
        if dep.status != report.status:
            dep.status_since = report.occurred_at
        dep.status, dep.last_event_at, dep.source = report.status, report.occurred_at, source
        # An alias move says nothing about the endpoint: what a pipeline reported stays.
        dep.endpoint = report.endpoint or dep.endpoint
        dep.platform = report.platform or dep.platform
        dep.served_by_ref = report.served_by or dep.served_by_ref
    dep.model_version = ModelVersion.objects.filter(entity=model, version=report.version).first()
    dep.owner_team_id, dep.visibility = model.owner_team_id, model.visibility
    dep.entity = catalog_services.entity_put_generated(
        data=_descriptor(dep, model, _entity_name(dep, model, actor)), source=f"deployments:{source}", actor=actor,
        actor_label=actor_label)
    dep.save()
    event = DeploymentEvent.objects.create(
        deployment=dep, model=model, version=report.version, environment=report.environment,
        status=report.status, endpoint=report.endpoint, platform=report.platform, source=source,
        occurred_at=report.occurred_at, actor=actor if getattr(actor, "is_authenticated", False) else None,
        actor_label=actor_label, idempotency_key=key, fingerprint=report.fingerprint())
    audit_record(actor=actor, actor_label=actor_label, action="deployments.event", target=dep.entity.ref,
                 after={"model": model.ref, "version": report.version, "environment": report.environment,
                        "status": report.status, "endpoint": report.endpoint, "platform": report.platform,
                        "time": report.occurred_at.isoformat(), "source": source, "current": newest})
    return event


def deployment_report(*, actor, body: dict) -> tuple[DeploymentEvent, bool]:
    """A CD pipeline's event → (event, created). A repeated idempotency key with the same event answers
    the stored one (created False); with a different event, ReplayConflict. Nothing is written unless
    every field is good (InvalidEvent, Http404 for a model the actor may not see, PermissionDenied)."""
    report, key = check_event(actor=actor, body=body)
    label = actor.get_username()
    if key:
        found = DeploymentEvent.objects.filter(actor_label=label, idempotency_key=key).first()
        if found is not None:
            if found.fingerprint != report.fingerprint():
                raise ReplayConflict(f"idempotencyKey {key!r} was used for a different event (#{found.pk})")
            return found, False
    try:
        with transaction.atomic():
            event = _record(report, source=Source.API, actor=actor, actor_label=label, key=key)
            drift_refresh(model_ids=[report.model.pk])
    except DescriptorError as exc:  # the composed descriptor broke a catalog rule (e.g. a location owns its name)
        raise InvalidEvent(exc.field or "model", exc.message) from exc
    except IntegrityError:
        # The same key raced in from a parallel retry: the other one won; answer with it.
        found = DeploymentEvent.objects.filter(actor_label=label, idempotency_key=key).first() if key else None
        if found is None:
            raise
        if found.fingerprint != report.fingerprint():
            raise ReplayConflict(f"idempotencyKey {key!r} was used for a different event (#{found.pk})") from None
        return found, False
    return event, True


@transaction.atomic
def deployments_from_aliases(*, model_ids: list[int]) -> int:
    """MLflow aliases named in PLINTH_DEPLOYMENT_ALIASES as deployments: a version that gained a mapped
    alias is live in its environment, one that lost it is retired there. Called inside the MLflow
    sync's transaction (catalog.signals.model_versions_synced); returns the events written."""
    mapping = {str(a): str(e) for a, e in (conf.get("ALIASES") or {}).items()}
    if not mapping or not model_ids:
        return 0
    now = timezone.now()
    wanted: dict[tuple[int, str, str], ModelVersion] = {}
    for mv in ModelVersion.objects.filter(entity_id__in=model_ids).only("entity_id", "version", "aliases"):
        for alias in mv.aliases or []:
            if alias in mapping:
                wanted[mv.entity_id, mv.version, mapping[alias]] = mv
    current = {(d.model_id, d.version, d.environment): d for d in
               Deployment.objects.filter(model_id__in=model_ids, source=Source.MLFLOW_ALIAS,
                                         environment__in=set(mapping.values()))}
    models = {m.pk: m for m in Entity.objects.filter(pk__in=model_ids)}
    changes = [(key, Status.RETIRED) for key, dep in current.items() if key not in wanted and dep.status == Status.LIVE]
    for key in wanted:
        dep = current.get(key)
        if dep is None:
            # A version a pipeline already reported live there keeps that history; the alias only adds
            # an event when it says something new.
            dep = Deployment.objects.filter(model_id=key[0], version=key[1], environment=key[2]).first()
        if dep is None or dep.status != Status.LIVE:
            changes.append((key, Status.LIVE))
    written = 0
    for (model_id, version, environment), status in changes:
        try:
            with transaction.atomic():  # one refused deployment must not undo the MLflow sync around it
                _record(Report(models[model_id], version, environment, status, "", "", now),
                        source=Source.MLFLOW_ALIAS, actor=None, actor_label="mlflow")
            written += 1
        except (DescriptorError, InvalidEvent) as exc:
            log.warning("alias deployment of %s v%s in %s not stored: %s", models[model_id].ref, version,
                        environment, exc)
    drift_refresh(model_ids=model_ids)
    return written


# -- following the model ---------------------------------------------------------------------------


def _follows(dep: Deployment) -> bool:
    """Whether the deployment's row and entity still say what its model says (owner, visibility, title,
    lifecycle, system): read from what is loaded, no query."""
    model, entity = dep.model, dep.entity
    expected = _descriptor(dep, model, entity.name)
    return (dep.visibility == entity.visibility == model.visibility and dep.owner_team_id == model.owner_team_id
            and entity.title == expected["metadata"]["title"] and entity.data.get("spec") == expected["spec"])


def deployments_follow_models(*, model_refs: list[str] | None, chunk: int = 2000) -> int:
    """Bring the deployments of these models (None: all) in line with their model after it changed: a
    model made private (or internal again, or given to another team) takes its Deployment entities (through
    catalog.services, so search and facets follow), rows and drift along. One read per `chunk` models;
    writes only for the deployments that differ. Returns how many were rewritten."""
    refs = None if model_refs is None else sorted(set(model_refs))
    chunks = [None] if refs is None else [refs[i:i + chunk] for i in range(0, len(refs), chunk)]
    rewritten = 0
    for part in chunks:
        deps = Deployment.objects.select_related("model", "entity")
        if part is not None:
            deps = deps.filter(model__ref__in=part)
        stale = [dep.pk for dep in deps.iterator(chunk_size=chunk) if not _follows(dep)]
        if stale:
            rewritten += _follow(stale)
    return rewritten


@transaction.atomic
def _follow(dep_ids: list[int]) -> int:
    deps = list(Deployment.objects.select_for_update(of=("self",)).select_related("model", "entity")
                .filter(pk__in=dep_ids))
    changed = []
    for dep in deps:
        if _follows(dep):  # read again under the lock: a report may have brought it in line meanwhile
            continue
        model = dep.model
        try:
            with transaction.atomic():
                dep.entity = catalog_services.entity_put_generated(
                    data=_descriptor(dep, model, dep.entity.name), source=f"deployments:{dep.source}", actor=None,
                    actor_label="deployments")
        except DescriptorError as exc:  # e.g. a location now defines that name: its descriptor wins there
            log.warning("the entity of deployment %s does not follow %s: %s", dep.entity.ref, model.ref, exc)
        dep.owner_team_id, dep.visibility = model.owner_team_id, model.visibility
        dep.save(update_fields=["entity", "owner_team", "visibility", "updated_at"])
        changed.append(dep)
    if not changed:
        return 0
    ids = [dep.pk for dep in changed]
    # Drift (open and cleared) is listed by the permission module from its own columns: one update.
    own = Deployment.objects.filter(pk=OuterRef("deployment_id"))
    Drift.objects.filter(deployment_id__in=ids).update(visibility=Subquery(own.values("visibility")[:1]),
                                                       owner_team_id=Subquery(own.values("owner_team_id")[:1]))
    for model in {dep.model_id: dep.model for dep in changed}.values():
        audit_record(actor=None, actor_label="deployments", action="deployments.follow_model", target=model.ref,
                     after={"visibility": model.visibility, "owner": model.owner_ref,
                            "deployments": sorted(dep.entity.ref for dep in changed if dep.model_id == model.pk)})
    return len(changed)


# -- compliance drift -----------------------------------------------------------------------------


def _governed(dep: Deployment, model: Entity, memo: dict) -> tuple[bool, str]:
    """(governed, why) by the Rego rule; an error fails closed (governed) and says so."""
    risk = model.spec.get("riskTier")
    key = (dep.environment, dep.platform, model.pk)
    if key not in memo:
        payload = {"environment": dep.environment, "platform": dep.platform,
                   "model": {"ref": model.ref, "lifecycle": model.lifecycle, "owner": model.owner_ref,
                             "riskTier": risk if isinstance(risk, int) else None}}
        try:
            value = policy.rule_value(str(conf.get("POLICY_MODULE")), "governed_environment", payload)
            memo[key] = (value, "") if isinstance(value, bool) else (
                True, f"policy error (fail closed): governed_environment is {str(value)[:40]}, not true/false")
        except policy.PolicyError as exc:
            log.warning("deployments policy failed, treating %s as governed: %s", dep.environment, exc)
            memo[key] = (True, f"policy error (fail closed): {str(exc)[:160]}")
    return memo[key]


def approved_pairs(model_ids: list[int]) -> set[tuple[int, str, str]]:
    """(model id, version, environment) with an executed promotion whose alias maps to the environment."""
    mapping = conf.get("ALIASES") or {}
    out = set()
    for entity_id, params in ApprovalRequest.objects.filter(
            entity_id__in=model_ids, action=ActionType.PROMOTE_MODEL_VERSION,
            state=RequestState.EXECUTED).values_list("entity_id", "params"):
        env = mapping.get(str((params or {}).get("alias", "")))
        if env:
            out.add((entity_id, str(params.get("version", "")), env))
    return out


@transaction.atomic
def drift_refresh(*, model_ids: list[int] | None = None) -> dict:
    """Open a Drift for each live deployment in a governed environment without an executed approval,
    clear those that no longer drift; one audit event per opening and per clearing, never per look.
    `model_ids` None: every model with a deployment (the periodic pass)."""
    deps = Deployment.objects.select_related("model")
    drifts = Drift.objects.filter(cleared_at__isnull=True)
    if model_ids is not None:
        deps, drifts = deps.filter(model_id__in=model_ids), drifts.filter(model_id__in=model_ids)
    deps = list(deps)
    open_by_dep = {d.deployment_id: d for d in drifts.select_related("model").select_for_update(of=("self",))}
    approved = approved_pairs(sorted({d.model_id for d in deps}))
    memo: dict = {}
    now, opened, cleared = timezone.now(), 0, 0
    for dep in deps:
        serving = dep.status in SERVING
        governed, why = _governed(dep, dep.model, memo) if serving else (False, "")
        is_approved = (dep.model_id, dep.version, dep.environment) in approved
        drifting = serving and governed and not is_approved
        row = open_by_dep.pop(dep.pk, None)
        if drifting and row is None:
            Drift.objects.create(deployment=dep, model=dep.model, version=dep.version, environment=dep.environment,
                                 owner_team_id=dep.owner_team_id, visibility=dep.visibility, detected_at=now,
                                 reason=why or f"no executed promotion of v{dep.version} to {dep.environment}")
            audit_record(actor=None, action="deployments.drift.detected", target=dep.model.ref,
                         after={"version": dep.version, "environment": dep.environment, "reason": why or "unapproved"})
            opened += 1
        elif row is not None and not drifting:
            reason = "approved" if is_approved else ("no longer live" if not serving else "environment not governed")
            _clear(row, reason, now)
            cleared += 1
    for row in open_by_dep.values():  # its deployment is gone
        _clear(row, "deployment removed", now)
        cleared += 1
    return {"opened": opened, "cleared": cleared}


def _clear(row: Drift, reason: str, now) -> None:
    row.cleared_at, row.cleared_reason = now, reason
    row.save(update_fields=["cleared_at", "cleared_reason"])
    audit_record(actor=None, action="deployments.drift.cleared", target=row.model.ref,
                 after={"version": row.version, "environment": row.environment, "reason": reason})
