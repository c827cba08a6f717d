"""The MLflow provider: registered models, versions, aliases, tags and source-run metrics/params
become Model entities (merged with a descriptor of the same model when one exists)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
from collections import defaultdict
from datetime import UTC, datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal.core.audit import audit_record
from portal.core.numbers import digits

from . import experiments, signals
from .descriptors.refs import MAX_NAME, name_problem
from .ingest.reader import content_hash
from .models import Entity, ExperimentRun, MlflowSyncState, ModelVersion, RunInput

log = logging.getLogger("plinth.mlflow")
REGISTERED_MODEL_ANNOTATION = "mlflow.org/registered-model"
PROMPT_TAG = "mlflow.prompt.is_prompt"


def client():
    # Tight limits: a task must fail fast and retry on its own schedule, not hang for minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", str(settings.MLFLOW_HTTP_MAX_RETRIES))
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(settings.MLFLOW_HTTP_TIMEOUT))
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=settings.MLFLOW_TRACKING_URI, registry_uri=settings.MLFLOW_TRACKING_URI)


def model_name(entity: Entity) -> str:
    spec = entity.spec
    mlflow = spec.get("mlflow") if isinstance(spec.get("mlflow"), dict) else {}
    return entity.annotations.get(REGISTERED_MODEL_ANNOTATION) or mlflow.get("registeredModel") or \
        spec.get("registeredModel") or entity.name


def _ts(ms) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def fetch_models(mlflow, names: list[str] | None = None, known: dict | None = None) -> list[dict]:
    """Everything we need from MLflow, read before any database write. `names`: only these registered
    models (a webhook's targeted sync); a name MLflow no longer knows comes back with `deleted` set.
    `known`: runs as stored (`known_runs`)."""
    if names is not None:
        return [_fetch_model(mlflow, name, known) for name in dict.fromkeys(names)]
    models = []
    token = None
    while True:
        page = mlflow.search_registered_models(max_results=200, page_token=token)
        for rm in page:
            if (rm.tags or {}).get(PROMPT_TAG):
                continue
            models.append(_fetch_model(mlflow, rm.name, known))
        token = page.token
        if not token:
            return [m for m in models if not m.get("deleted")]


TERMINAL_RUN_STATES = {"FINISHED", "FAILED", "KILLED"}


def _fetch_run(mlflow, run_id: str, known: dict) -> dict:
    """A run's facts. Metric series are read only for metrics whose last step is above 0 (others hold
    one value), and not again for a run that had already ended when it was last synced with the same
    final values (`known`: run id -> (status, end ms, stored history, final metrics))."""
    run = mlflow.get_run(run_id)
    info, data = run.info, run.data
    end_ms = info.end_time or None
    stored = known.get(run_id)
    # A value logged to an ended run later (a post-hoc evaluation) changes its final metrics: read again.
    metrics = _finite(data.metrics)
    if stored and stored[0] in TERMINAL_RUN_STATES and stored[:2] == (info.status, end_ms) \
            and stored[3] == metrics:
        history = stored[2]
    else:
        history = {}
        stepped = sorted(m.key for m in getattr(data, "_metric_objs", []) if (m.step or 0) > 0)
        for key in stepped[:experiments.HISTORY_METRICS]:
            points = sorted((m.step, m.value) for m in mlflow.get_metric_history(run_id, key)
                            if math.isfinite(m.value))
            if len(points) > 1:
                history[key] = experiments.thin(points)
    inputs = []
    for item in (run.inputs.dataset_inputs if run.inputs else [])[:100]:
        ds = item.dataset
        uri = experiments.source_uri(ds.source)
        namespace, name = experiments.openlineage_name(ds.source_type or "", uri, ds.name or "")
        context = next((t.value for t in item.tags if t.key == "mlflow.data.context"), "")
        inputs.append({"name": (ds.name or "")[:500], "digest": (ds.digest or "")[:64],
                       "source_type": (ds.source_type or "")[:40], "source": uri, "namespace": namespace[:500],
                       "dataset_name": name[:1000], "schema": experiments.schema_columns(ds.schema),
                       "context": (context or "")[:100]})
    return {"run_id": run_id, "experiment_id": info.experiment_id or "", "name": (info.run_name or "")[:250],
            "status": info.status or "", "started": _ts(info.start_time), "ended": _ts(end_ms), "end_ms": end_ms,
            "params": dict(data.params), "metrics": metrics, "tags": dict(data.tags),
            "history": history, "inputs": inputs}


def _finite(metrics) -> dict:
    """A run's final metrics without NaN and ±Inf (a training that diverged logs them; MLflow keeps
    them): JSON has no such numbers, PostgreSQL's jsonb refuses them and every comparison of them is
    false. Left out, the metric reads as not logged."""
    return {key: value for key, value in dict(metrics).items() if math.isfinite(value)}


def known_runs() -> dict:
    """What the last sync stored of each run, so a finished run's metric series are not read again."""
    rows = ExperimentRun.objects.values_list("run_id", "status", "ended_at", "history", "metrics")
    return {run_id: (status, round(ended.timestamp() * 1000) if ended else None, history, metrics)
            for run_id, status, ended, history, metrics in rows}


def _fetch_model(mlflow, name: str, known: dict | None = None) -> dict:
    from mlflow.exceptions import MlflowException

    try:
        full = mlflow.get_registered_model(name)  # search results may lack aliases
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return {"name": name, "deleted": True, "description": "", "tags": {}, "versions": []}
        raise
    aliases_by_version: dict[str, list[str]] = {}
    for alias, version in (full.aliases or {}).items():
        aliases_by_version.setdefault(str(version), []).append(alias)
    versions = []
    runs: dict[str, dict | None] = {}  # one read per run, however many versions came from it
    for mv in mlflow.search_model_versions(f"name='{_quoted(full.name)}'", max_results=200):
        run = None
        if mv.run_id:
            if mv.run_id not in runs:
                try:
                    runs[mv.run_id] = _fetch_run(mlflow, mv.run_id, known or {})
                except Exception as exc:  # a deleted run must not stop the sync
                    log.warning("run %s of %s v%s unreadable: %s", mv.run_id, full.name, mv.version, exc)
                    runs[mv.run_id] = None
            run = runs[mv.run_id]
        versions.append({
            "version": str(mv.version), "aliases": sorted(aliases_by_version.get(str(mv.version), [])),
            "status": mv.status or "", "description": mv.description or "", "run_id": mv.run_id or "",
            "source": mv.source or "", "metrics": run["metrics"] if run else {},
            "params": run["params"] if run else {}, "tags": dict(mv.tags or {}),
            "created": _ts(mv.creation_timestamp), "run": run,
        })
    return _without_nul({"name": full.name, "description": full.description or "", "tags": dict(full.tags or {}),
                         "versions": versions, "prompt": bool((full.tags or {}).get(PROMPT_TAG))})


def _without_nul(value):
    """MLflow stores a NUL in a param, tag, name or description as it was logged; no PostgreSQL text or
    jsonb column does, and one such value failed the whole sync, every model, on every attempt."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def _quoted(name: str) -> str:
    # MLflow's filter grammar: a quote inside a quoted string is doubled.
    return name.replace("'", "''")


@transaction.atomic
def store(models: list[dict]) -> int:
    by_model_name = {}
    for entity in Entity.objects.filter(kind_key="model"):
        by_model_name[model_name(entity).lower()] = entity
    # What each model showed before this sync (its versions and their metric names), read once.
    before: dict[int, list] = defaultdict(list)
    for entity_id, version, metrics in ModelVersion.objects.filter(entity__kind_key="model").values_list(
            "entity_id", "version", "metrics"):
        before[entity_id].append((version, metrics))
    touched, synced, moved = [], [], []
    stored_runs = _store_runs([v["run"] for m in models for v in m["versions"] if v.get("run")])
    for model in models:
        entity = by_model_name.get(model["name"].lower())
        if model.get("deleted") or model.get("prompt"):
            # Gone from MLflow (or a prompt): its versions go; a descriptor-backed entity stays.
            if entity is not None and ModelVersion.objects.filter(entity=entity).delete()[0]:
                touched.append(entity.ref)
                synced.append(entity.pk)
                moved.append(entity.pk)
            continue
        if entity is None:
            entity = _entity_from_mlflow(model)
            if entity is None:
                continue
        if _shown(before.get(entity.pk, ())) != _shown((v["version"], v["metrics"]) for v in model["versions"]):
            moved.append(entity.pk)
        seen = set()
        for v in model["versions"]:
            seen.add(v["version"])
            ModelVersion.objects.update_or_create(entity=entity, version=v["version"], defaults={
                "version_number": int(v["version"]) if digits(v["version"]) else 0,
                "aliases": v["aliases"], "status": v["status"], "description": v["description"],
                "run_id": v["run_id"], "source": v["source"][:1000], "metrics": v["metrics"], "params": v["params"],
                "tags": v["tags"], "created_at_mlflow": v["created"], "experiment_run": stored_runs.get(v["run_id"]),
            })
        ModelVersion.objects.filter(entity=entity).exclude(version__in=seen).delete()
        touched.append(entity.ref)
        synced.append(entity.pk)
    # A model whose versions, or their metric names, changed has changed: its updated_at moves, which
    # is also what the search repair sweep compares with its document (docs/search.md).
    Entity.objects.filter(pk__in=moved).update(updated_at=timezone.now())
    # Runs no version names any more (versions deleted, or registered again from another run) go.
    ExperimentRun.objects.filter(versions__isnull=True).delete()
    signals.model_versions_synced.send(sender=Entity, entity_ids=synced)
    transaction.on_commit(lambda: signals.entities_changed.send(sender=Entity, changed=touched, removed=[]))
    return len(touched)


def _shown(versions) -> tuple[frozenset, frozenset]:
    """A model's version numbers and the names of their metrics (its search document holds those)."""
    versions = list(versions)
    return frozenset(v for v, _ in versions), frozenset(m for _, metrics in versions for m in metrics or {})


def _store_runs(runs: list[dict]) -> dict[str, ExperimentRun]:
    """Upsert each run once with its inputs replaced, each input linked to the Dataset entity that
    carries its OpenLineage name as annotation, else one of the same name."""
    unique = {r["run_id"]: r for r in runs}
    inputs = [i for r in unique.values() for i in r["inputs"]]
    by_key, by_name = experiments.dataset_matches({(i["namespace"], i["dataset_name"]) for i in inputs},
                                                  {i["name"] for i in inputs})
    stored = {}
    for run_id, r in unique.items():
        row, _ = ExperimentRun.objects.update_or_create(run_id=run_id, defaults={
            "experiment_id": r["experiment_id"], "name": r["name"], "status": r["status"],
            "started_at": r["started"], "ended_at": r["ended"], "params": r["params"], "metrics": r["metrics"],
            "history": r["history"], "tags": r["tags"],
        })
        stored[run_id] = row
    if unique:
        RunInput.objects.filter(run__in=list(stored.values())).delete()
        RunInput.objects.bulk_create([
            RunInput(run=stored[run_id], entity_id=by_key.get((i["namespace"], i["dataset_name"]))
                     or by_name.get(i["name"].lower()[:63]), **i)
            for run_id, r in unique.items() for i in r["inputs"]
        ])
    return stored


def _entity_name(registered: str, suffix: int = 0) -> str:
    """The entity name of a registered model without a descriptor: its name with each run of other
    characters made one '-', cut to 63. `suffix`: that many hex digits of the name's hash appended,
    for a model whose plain name is taken by another model (`churn.v2` and `churn_v2`)."""
    import re

    name = re.sub(r"[^A-Za-z0-9]+", "-", registered).strip("-") or "unnamed-model"
    if suffix:
        digest = hashlib.sha256(registered.lower().encode()).hexdigest()[:suffix]
        return f"{name[:MAX_NAME - suffix - 1].rstrip('-')}-{digest}"
    return name[:MAX_NAME].rstrip("-")


def _entity_from_mlflow(model: dict) -> Entity | None:
    """A registered model without a descriptor still appears in the catalog (owner unknown). Its
    entity is never one that belongs to another registered model: names that differ only in the
    characters an entity name cannot hold get a hash suffix. None (logged and audited) when even
    those are taken by other models."""
    for suffix in (0, 8, 16):
        name = _entity_name(model["name"], suffix)
        if name_problem(name):
            continue
        entity, created = _get_or_create(model, name)
        if created or model_name(entity).lower() == model["name"].lower():
            return entity
    log.warning("MLflow model %r skipped: every entity name for it belongs to another model", model["name"])
    audit_record(actor=None, action="catalog.mlflow.skip", target=f"mlflow:{model['name']}"[:400],
                 outcome="failure", after={"reason": "every entity name for it belongs to another model"})
    return None


def _get_or_create(model: dict, name: str) -> tuple[Entity, bool]:
    data = {
        "apiVersion": "plinth.dev/v1alpha1", "kind": "Model",
        "metadata": {"name": name, "namespace": "default", "description": model["description"][:2000],
                     "annotations": {REGISTERED_MODEL_ANNOTATION: model["name"]}, "tags": ["mlflow"]},
        "spec": {"type": model["tags"].get("type", "unknown")[:100], "lifecycle": "experimental", "owner": ""},
    }
    ref = f"model:default/{name}".lower()
    entity, created = Entity.objects.get_or_create(ref=ref, defaults=dict(
        kind="Model", kind_key="model", namespace="default", name=name, name_key=name.lower(),
        api_version=data["apiVersion"], description=data["metadata"]["description"], spec_type=data["spec"]["type"],
        lifecycle="experimental", tags=["mlflow"], data=data, source="mlflow", content_hash=content_hash(data)))
    if created:
        from . import facets

        facets.bump()
        audit_record(actor=None, action="catalog.entity.create", target=ref, after={"source": "mlflow"})
    return entity, created


def known_model_names() -> set[str]:
    """Lower-cased MLflow registered-model names the catalog knows (a webhook for another is refused)."""
    names = set()
    for entity in Entity.objects.filter(kind_key="model").only("data", "name"):
        names.add(model_name(entity).lower())
    return names


def sync(names: list[str] | None = None) -> dict:
    """One sync pass over every registered model, or over `names` only (a targeted sync after a webhook
    or a "Sync now"). Raises on MLflow errors after recording them (the task retries)."""
    state = MlflowSyncState.objects.order_by("pk").first() or MlflowSyncState.objects.create()
    state.last_attempt_at = timezone.now()
    try:
        models = fetch_models(client(), names, known_runs())
    except Exception as exc:
        state.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        state.save(update_fields=["last_attempt_at", "last_error"])
        raise
    try:
        count = store(models)
    except Exception as exc:  # e.g. the database restarted or its disk is full: nothing was stored
        state.last_error = f"storing failed: {type(exc).__name__}: {' '.join(str(exc).split())}"[:2000]
        with contextlib.suppress(Exception):  # recording it needs the database that just failed
            MlflowSyncState.objects.filter(pk=state.pk).update(
                last_attempt_at=state.last_attempt_at, last_error=state.last_error
            )
        raise
    state.last_success_at = timezone.now()
    state.last_error = ""
    if names is None:  # a targeted pass says nothing about how many models there are
        state.models_synced = count
    state.save()
    return {"models": count, "versions": sum(len(m["versions"]) for m in models)}


WEBHOOK_NAME = "plinth"


def register_webhook(*, url: str, secret: str) -> str:
    """Create (or bring up to date) MLflow's webhook to this portal; returns its id. Idempotent: the
    webhook named `plinth` is updated in place rather than duplicated."""
    from .mlflow_webhooks import EVENTS

    mlflow = client()
    events = sorted(EVENTS)
    token = None
    while True:
        page = mlflow.list_webhooks(max_results=100, page_token=token)
        for hook in page:
            if hook.name == WEBHOOK_NAME:
                mlflow.update_webhook(hook.webhook_id, url=url, events=events, secret=secret, status="ACTIVE")
                return hook.webhook_id
        token = page.token
        if not token:
            break
    return mlflow.create_webhook(name=WEBHOOK_NAME, url=url, events=events, secret=secret,
                                 description="Plinth: sync the catalog when models, versions or aliases change").webhook_id
