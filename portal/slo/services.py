"""Writes of the SLO app: reading an entity's OpenSLO file into SLO rows (all or nothing), and
evaluating SLOs against Prometheus (one query per SLO), keeping the history and sending `page_burn`
when a page-level burn starts."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from catalog.models import Entity
from portal.core.audit import audit_record

from . import compute, conf, openslo, prometheus, signals
from .models import SLO, Evaluation, SLOFile

log = logging.getLogger("plinth.slo")


def slo_file_sync(*, entity: Entity, now: datetime | None = None) -> list[str]:
    """Read the entity's OpenSLO file and make its SLO rows match it. Returns the problems found (each
    naming file and field); with any problem nothing changes but the file's error list. An entity
    without the annotation keeps no SLOs."""
    now = now or timezone.now()
    relative = openslo.annotation_path(entity.annotations)
    if relative is None:
        with transaction.atomic():
            removed = SLO.objects.filter(entity=entity).delete()[0]
            SLOFile.objects.filter(entity=entity).delete()
            if removed:
                audit_record(actor=None, action="slo.definitions.removed", target=entity.ref,
                             after={"annotation": openslo.ANNOTATION})
        return []
    try:
        text = openslo.read_file(openslo.resolve(entity, relative), relative, int(conf.get("MAX_FILE_BYTES")))
    except openslo.SourceError as exc:
        return _file_errors(entity, relative, [str(exc)], now)
    specs, errors = openslo.parse(text, relative)
    problems = [str(e) for e in errors]
    if not problems and len(specs) > int(conf.get("MAX_PER_ENTITY")):
        problems = [f"{relative}: {len(specs)} objectives, over the {conf.get('MAX_PER_ENTITY')} an entity may declare"]
    if problems:
        return _file_errors(entity, relative, problems, now)
    digest = hashlib.sha256(text.encode()).hexdigest()
    with transaction.atomic():
        existing = {(s.name, s.objective): s for s in SLO.objects.select_for_update().filter(entity=entity)}
        keep = set()
        changed = []
        for spec in specs:
            keep.add(spec.key)
            row = existing.get(spec.key)
            fields = {"title": spec.display_name[:200], "spec": spec.to_json(), "target": spec.target,
                      "budgeting": spec.budgeting, "window": spec.window.text, "owner_team_id": entity.owner_team_id,
                      "visibility": entity.visibility}
            if row is None:
                SLO.objects.create(entity=entity, name=spec.name, objective=spec.objective, **fields)
                changed.append(spec.key)
            elif any(getattr(row, k) != v for k, v in fields.items()):
                definition_changed = row.spec != fields["spec"]
                for k, v in fields.items():
                    setattr(row, k, v)
                row.save(update_fields=list(fields))
                if definition_changed:
                    changed.append(spec.key)
        gone = [pk for key, pk in ((k, s.pk) for k, s in existing.items()) if key not in keep]
        SLO.objects.filter(pk__in=gone).delete()
        SLOFile.objects.update_or_create(entity=entity, defaults={"path": relative[:2000], "errors": [],
                                                                   "digest": digest, "read_at": now})
        if changed or gone:
            audit_record(actor=None, action="slo.definitions.synced", target=entity.ref,
                         after={"file": relative[:200], "changed": ["/".join(k) for k in changed],
                                "removed": len(gone)})
    return []


def _file_errors(entity: Entity, relative: str, problems: list[str], now: datetime) -> list[str]:
    problems = [p[:1000] for p in problems[:20]]
    SLOFile.objects.update_or_create(entity=entity, defaults={"path": relative[:2000], "errors": problems,
                                                               "read_at": now})
    return problems


def slo_evaluate(*, slo: SLO, now: datetime | None = None) -> str:
    """Evaluate one SLO at `now`. Returns "ok", "query" (Prometheus refused the PromQL: the error is kept
    for the tab), "unreachable" (the last values stay, stale) or "no_data"."""
    now = now or timezone.now()
    spec = openslo.Spec.from_json(slo.spec)
    default_step = str(conf.get("THRESHOLD_STEP"))
    named = compute.queries(spec, now, default_step)
    try:
        rows = prometheus.query(conf.prometheus_url(), compute.union(named), now, float(conf.get("QUERY_TIMEOUT")))
        values = _by_name(rows)
    except prometheus.QueryError as exc:
        return _problem(slo, SLO.Problem.QUERY, f"Prometheus refused the query: {exc}", now)
    except prometheus.NotConfigured as exc:
        return _problem(slo, SLO.Problem.UNREACHABLE, f"Not evaluated: {exc}.", now)
    except prometheus.Unreachable as exc:
        return _problem(slo, SLO.Problem.UNREACHABLE, f"Prometheus is unreachable: {exc}", now)
    result = compute.outcome(spec, values, now, default_step)
    if result.sli is None:
        return _problem(slo, SLO.Problem.NO_DATA, "No data: the indicator returned nothing for the window "
                        "(no traffic yet, or the query matches no series).", now)
    starting = []
    with transaction.atomic():
        row = SLO.objects.select_for_update().get(pk=slo.pk)
        before = set(row.paging)
        paging = result.paging
        starting = [a for a in paging if a["long"] not in before]
        row.sli, row.good, row.total = result.sli, result.good, result.total
        row.budget_remaining, row.budget_amount, row.budget_unit = (result.budget_remaining, result.budget_amount,
                                                                    result.budget_unit)
        row.burn, row.alerts, row.paging = result.burn, result.alerts, [a["long"] for a in paging]
        row.evaluated_at = row.checked_at = now
        row.problem, row.error = SLO.Problem.NONE, ""
        row.save()
        Evaluation.objects.create(slo=row, at=now, sli=result.sli, budget_remaining=result.budget_remaining,
                                  burn={k: result.burn[k] for k in compute.SHOWN_WINDOWS})
        Evaluation.objects.filter(slo=row, at__lt=now - timedelta(days=int(conf.get("HISTORY_DAYS")))).delete()
        for alert in starting:
            transaction.on_commit(lambda a=alert, r=row: _send_page(r, a))
    slo.refresh_from_db()
    return "ok"


def _send_page(row: SLO, alert: dict) -> None:
    entity = Entity.objects.filter(pk=row.entity_id).first()
    log.warning("SLO %s/%s of %s: page-level burn %.1f over %s (threshold %s)", row.name, row.objective,
                entity.ref if entity else row.entity_id, alert["long_burn"], alert["long"], alert["threshold"])
    signals.page_burn.send(sender=row, entity=entity, window=f"{alert['long']}/{alert['short']}",
                           burn_rate=alert["long_burn"], threshold=alert["threshold"])


def _by_name(rows: list[tuple[dict, float]]) -> dict[str, float]:
    values: dict[str, float] = {}
    counts: dict[str, int] = {}
    for labels, value in rows:
        name = labels.get("plinth_q", "")
        counts[name] = counts.get(name, 0) + 1
        values[name] = value
    several = sorted(n for n, c in counts.items() if c > 1)
    if several:
        raise prometheus.QueryError(f"the indicator returns {counts[several[0]]} series for {several[0]} "
                                    "(aggregate it to one, e.g. with sum(…))")
    return values


def _problem(slo: SLO, problem: str, message: str, now: datetime) -> str:
    SLO.objects.filter(pk=slo.pk).update(problem=problem, error=message[:2000], checked_at=now)
    slo.problem, slo.error, slo.checked_at = problem, message[:2000], now
    return str(problem)


def evaluate_entities(*, entity_ids: list[int] | None = None, now: datetime | None = None) -> dict:
    """Read the files of the given entities (None: every entity with the annotation or with SLOs) and
    evaluate their SLOs. Returns counts."""
    now = now or timezone.now()
    annotated = Entity.objects.filter(data__metadata__annotations__has_key=openslo.ANNOTATION)
    known = set(SLOFile.objects.values_list("entity_id", flat=True))
    if entity_ids is not None:
        annotated = annotated.filter(id__in=entity_ids)
        known &= set(entity_ids)
    ids = set(annotated.values_list("id", flat=True)) | known
    stats = {"entities": 0, "file_errors": 0, "evaluated": 0, "problems": 0}
    # One entity's file or SLO that fails in a way nobody foresaw is logged and counted, and the others
    # are still read and evaluated; a database that is down stops the pass (the task retries it).
    for entity in Entity.objects.filter(id__in=sorted(ids)).select_related("location").order_by("id"):
        stats["entities"] += 1
        try:
            failed = slo_file_sync(entity=entity, now=now)
        except (OperationalError, InterfaceError):
            raise
        except Exception:
            log.exception("the SLO file of %s could not be read or stored", entity.ref)
            failed = True
        stats["file_errors"] += bool(failed)
    for slo in SLO.objects.filter(entity_id__in=ids).order_by("id"):
        try:
            outcome = slo_evaluate(slo=slo, now=now)
        except (OperationalError, InterfaceError):
            raise
        except Exception as exc:
            log.exception("SLO %s of entity %s could not be evaluated", slo.pk, slo.entity_id)
            # Said on the row too, or its owner never learns why the values stopped coming. Only the
            # exception's type: its message may carry what the tab's readers should not see.
            outcome = _problem(slo, SLO.Problem.ERROR, f"Plinth could not evaluate this objective "
                               f"({type(exc).__name__}); the error is in the portal's log. If it persists, "
                               "tell a platform administrator.", now)
        stats["evaluated" if outcome == "ok" else "problems"] += 1
    return stats
