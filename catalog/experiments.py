"""Experiments: the MLflow run behind each model version (params, metrics and their series, tags, input
datasets) and the comparison of 2–10 versions of one model. Pure functions over rows already read, plus
the reads themselves (`version_run`, `comparison`), each a fixed number of queries.

Also the one rule for which way a metric improves (`higher_is_better`): the model page, the compare view
and governance's promotion request all colour deltas with it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

from django.db.models import Prefetch, Q

from portal.accounts import permissions
from portal.core import urlparts
from portal.core.numbers import digits

from .models import Entity, ExperimentRun, ModelVersion, RunInput

MIN_COMPARED, MAX_COMPARED = 2, 10
HISTORY_POINTS = 200  # a metric series is thinned to this many points when stored (first and last kept)
HISTORY_METRICS = 30  # series fetched per run; final values are kept for every metric
DATASET_ANNOTATION = "openlineage.io/dataset"

# Metrics where a smaller number is the better model (errors, losses, latency); others: higher is better.
LOWER_IS_BETTER = re.compile(r"(^|[_.-])(loss|error|err|rmse|mse|mae|mape|logloss|log_loss|latency|fpr|fnr|brier)"
                             r"([_.@-]|$)", re.IGNORECASE)


def higher_is_better(metric: str) -> bool:
    return LOWER_IS_BETTER.search(metric) is None


def delta_verdict(metric: str, delta: float | None) -> str | None:
    """'better', 'worse' or 'same' for the compared value, by the metric's direction; None without a delta."""
    if delta is None:
        return None
    if delta == 0:
        return "same"
    return "better" if (delta > 0) == higher_is_better(metric) else "worse"


# -- OpenLineage naming of MLflow dataset sources ---------------------------------------------------
def _without_credentials(netloc: str) -> str:
    return netloc.rsplit("@", 1)[-1]


def openlineage_name(source_type: str, uri: str, fallback_name: str) -> tuple[str, str]:
    """(namespace, name) of a dataset source as OpenLineage's naming spec spells it: `s3://bucket` +
    `path`, `postgres://host:5432` + `db.schema.table`, `file` + `/abs/path`, `https://host` + `/path`.
    Credentials in the URI are dropped. A source without a URI (code, a DataFrame built in memory) is
    named by MLflow's dataset name in the `mlflow` namespace."""
    parts = urlparts.split(uri) if uri else None
    if parts is None:  # no URI, or one urllib cannot read (an unbalanced bracket in the host)
        return "mlflow", fallback_name
    scheme = parts.scheme.lower()
    host = _without_credentials(parts.netloc).lower()
    path = unquote(parts.path)
    # Scheme aliases folded as the lineage app folds them, so both name one dataset the same way.
    scheme = {"s3a": "s3", "s3n": "s3", "gcs": "gs", "abfs": "abfss", "wasb": "wasbs", "postgresql": "postgres"}.get(
        scheme, scheme)
    if scheme in {"s3", "gs", "abfss", "wasbs", "hdfs"}:
        return f"{scheme}://{host}", path.lstrip("/")
    if scheme in {"postgres", "mysql", "redshift", "snowflake", "bigquery"}:
        port = {"postgres": 5432, "mysql": 3306, "redshift": 5439}.get(scheme)
        if port and ":" not in host and host:
            host = f"{host}:{port}"
        return f"{scheme}://{host}", ".".join(p for p in path.strip("/").split("/") if p)
    if scheme in {"http", "https"}:
        return f"{scheme}://{host}", path or "/"
    if scheme in {"", "file"} and (path.startswith("/") or scheme == "file"):
        return "file", path
    return (f"{scheme}://{host}" if host else (scheme or "mlflow")), (path.lstrip("/") or fallback_name)


def dataset_address(namespace: str, name: str) -> str:
    """How people read a dataset's OpenLineage (namespace, name): the URI the naming spec makes of them
    (`file` + `/data/x.csv` is `file:///data/x.csv`, `https://host` + `/d.csv` is `https://host/d.csv`),
    else the two joined by a slash (`s3://bucket/raw/orders.parquet`, `postgres://db:5432/shop.public.orders`)."""
    if name.startswith("/"):
        return f"{namespace}{name}" if "://" in namespace else f"{namespace}://{name}"
    return f"{namespace}/{name}"


def source_uri(source_json: str) -> str:
    """The URI inside MLflow's dataset source JSON (`{"uri": …}` or `{"url": …}`), credentials removed:
    the user-info part, and the query string, `;` parameters and fragment as a whole — where a database
    URI keeps `password=`, a cloud storage URL its signature (`sig=`, `X-Amz-Signature=`), and no list of
    key names covers every driver. The dataset's name comes from the path, so nothing it needs is lost."""
    import json

    try:
        data = json.loads(source_json or "{}")
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    uri = data.get("uri") or data.get("url") or data.get("path") or ""
    if not isinstance(uri, str):
        return ""
    return _public_uri(uri)[:2000]


def _public_uri(uri: str) -> str:
    """`uri` without user info, query, `;` parameters or fragment; "" when it cannot be read (it may hold
    credentials that cannot be told apart). A JDBC URL (`jdbc:postgresql://u:pw@host/db`) is its inner URL."""
    if uri[:5].lower() == "jdbc:":
        inner = _public_uri(uri[5:])
        return f"{uri[:5]}{inner}" if inner else ""
    parts = urlparts.split(uri)
    if parts is None:
        return ""
    return parts._replace(netloc=_without_credentials(parts.netloc).split(";", 1)[0],
                          path=parts.path.split(";", 1)[0], query="", fragment="").geturl()


def schema_columns(schema_json: str) -> list[dict]:
    """[{"name", "type"}] from MLflow's dataset schema (`mlflow_colspec` or `mlflow_tensorspec`)."""
    import json

    try:
        data = json.loads(schema_json or "{}")
    except ValueError:
        return []
    specs = data.get("mlflow_colspec") if isinstance(data, dict) else None
    if not isinstance(specs, list):
        return []
    return [{"name": str(c.get("name", ""))[:200], "type": str(c.get("type", ""))[:60]}
            for c in specs[:500] if isinstance(c, dict)]


def thin(points: list[tuple[int, float]], limit: int = HISTORY_POINTS) -> list[list]:
    """At most `limit` points of a series, evenly spaced, keeping the first and the last."""
    if len(points) <= limit:
        return [[s, v] for s, v in points]
    last = len(points) - 1
    picks = sorted({round(i * last / (limit - 1)) for i in range(limit)})
    return [[points[i][0], points[i][1]] for i in picks]


# -- reads --------------------------------------------------------------------------------------
def _inputs_prefetch() -> Prefetch:
    return Prefetch("experiment_run__inputs", queryset=RunInput.objects.select_related("entity").order_by("id"))


def visible_dataset_ids(user, inputs: list[RunInput]) -> set[int]:
    """Ids of the linked Dataset entities the user may see: a private dataset of another team is shown
    as the bare source name, never as a link (one query, whatever the number of inputs)."""
    ids = {i.entity_id for i in inputs if i.entity_id}
    if not ids:
        return set()
    return set(permissions.filter_visible(Entity.objects.filter(pk__in=ids), user).values_list("pk", flat=True))


def run_facts(user, version: ModelVersion) -> dict | None:
    """The run behind a version as pages and the API show it; None when it has none (yet)."""
    run = version.experiment_run
    if run is None:
        return None
    inputs = list(run.inputs.all())
    visible = visible_dataset_ids(user, inputs)
    return run_body(run, inputs, visible)


def run_body(run: ExperimentRun, inputs: list[RunInput], visible: set[int]) -> dict:
    return {
        "runId": run.run_id, "experimentId": run.experiment_id, "name": run.name, "status": run.status,
        "startedAt": run.started_at.isoformat() if run.started_at else None,
        "endedAt": run.ended_at.isoformat() if run.ended_at else None,
        "params": run.params, "metrics": run.metrics, "history": run.history, "tags": run.tags,
        "inputs": [input_body(i, visible) for i in inputs],
    }


def input_body(item: RunInput, visible: set[int]) -> dict:
    entity = item.entity if item.entity_id in visible else None
    return {
        "name": item.name, "digest": item.digest, "sourceType": item.source_type, "source": item.source,
        "namespace": item.namespace, "datasetName": item.dataset_name,
        "address": dataset_address(item.namespace, item.dataset_name), "context": item.context,
        "schema": item.schema,
        "entityRef": entity.ref if entity else None, "entityUrl": entity.get_absolute_url() if entity else None,
    }


def model_version(entity: Entity, version: str) -> ModelVersion | None:
    return (ModelVersion.objects.filter(entity=entity, version=version).select_related("experiment_run")
            .prefetch_related(_inputs_prefetch()).first())


class CompareError(ValueError):
    """A compare request that cannot be answered as asked (400), with the message saying why."""


def parse_versions(values: list[str]) -> list[str]:
    """`versions=1,3` or `versions=1&versions=3`, in the order given (the first is the baseline)."""
    raw = [part.strip() for value in values for part in value.split(",")]
    raw = [r for r in raw if r]
    if not raw:
        raise CompareError("versions: name 2 to 10 model versions to compare, e.g. ?versions=1,2 "
                           "(the first is the baseline).")
    bad = [r for r in raw if not digits(r) or len(r) > 9]
    if bad:
        raise CompareError(f"versions: '{bad[0][:40]}' is not a version number (MLflow versions are 1, 2, 3, …).")
    normalised = [str(int(r)) for r in raw]
    twice = sorted({v for v in normalised if normalised.count(v) > 1}, key=int)
    if twice:
        raise CompareError(f"versions: version {twice[0]} is listed twice.")
    if not MIN_COMPARED <= len(normalised) <= MAX_COMPARED:
        raise CompareError(f"versions: {len(normalised)} given; compare {MIN_COMPARED} to {MAX_COMPARED} versions.")
    return normalised


@dataclass
class Comparison:
    entity: Entity
    versions: list[ModelVersion]
    metrics: list[dict] = field(default_factory=list)
    params: list[dict] = field(default_factory=list)
    charts: list = field(default_factory=list)
    inputs: list[list[dict]] = field(default_factory=list)

    @property
    def baseline(self) -> ModelVersion:
        return self.versions[0]

    @property
    def with_inputs(self) -> list[tuple[ModelVersion, list[dict]]]:
        return list(zip(self.versions, self.inputs, strict=True))


class VersionsMissing(LookupError):
    """Versions the model does not have (the caller answers 404, as for a missing model)."""


def comparison(user, entity: Entity, wanted: list[str]) -> Comparison:
    """Versions `wanted` of one model side by side: three queries whatever their number (versions with
    their runs, the runs' inputs, the visible linked datasets). Raises VersionsMissing for versions the
    model does not have."""
    from . import charts

    rows = {v.version: v for v in ModelVersion.objects.filter(entity=entity, version__in=wanted)
            .select_related("experiment_run").prefetch_related(_inputs_prefetch())}
    missing = [w for w in wanted if w not in rows]
    if missing:
        raise VersionsMissing(f"{entity.name} has no version {', '.join(missing)}")
    versions = [rows[w] for w in wanted]
    all_inputs = [list(v.experiment_run.inputs.all()) if v.experiment_run else [] for v in versions]
    visible = visible_dataset_ids(user, [i for group in all_inputs for i in group])
    result = Comparison(entity=entity, versions=versions)
    result.metrics = metric_rows(versions)
    result.params = param_rows(versions)
    result.inputs = [[input_body(i, visible) for i in group] for group in all_inputs]
    result.charts = [c for c in (charts.compare_chart(row["name"], versions) for row in result.metrics) if c]
    return result


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer past the float range
        return None
    return number if math.isfinite(number) else None


def _finite(value: float) -> float | None:
    """A difference or ratio of two finite metrics can still overflow (1e308 - -1e308, 1.0 / 1e-320):
    strict JSON has no infinity, so it is no number at all (null) rather than a 500."""
    return value if math.isfinite(value) else None


def _difference(metric: str, base: float | None, value: float | None) -> dict:
    if value is None or base is None:
        return {"delta": None, "relative": None, "verdict": None}
    raw = value - base  # finite operands: an overflow is ±inf, whose sign still says which way it went
    try:
        relative = _finite(raw / abs(base)) if base else None
    except OverflowError:
        relative = None
    return {"delta": _finite(raw), "relative": relative if _finite(raw) is not None else None,
            "verdict": delta_verdict(metric, raw)}


def metric_rows(versions: list[ModelVersion]) -> list[dict]:
    """One row per metric any version logged: each version's value, and for every version after the
    first its difference to the first (the baseline) with a verdict by the metric's direction."""
    names = sorted({k for v in versions for k, val in (v.metrics or {}).items() if _number(val) is not None})
    rows = []
    for name in names:
        base = _number((versions[0].metrics or {}).get(name))
        cells = []
        for i, v in enumerate(versions):
            value = _number((v.metrics or {}).get(name))
            cells.append({"version": v.version, "value": value,
                          **_difference(name, base, value if i else None)})
        rows.append({"name": name, "higherIsBetter": higher_is_better(name), "cells": cells})
    return rows


def param_rows(versions: list[ModelVersion]) -> list[dict]:
    """One row per param any version's run set, with `differs` when the versions do not all agree."""
    names = sorted({k for v in versions for k in (v.params or {})})
    rows = []
    for name in names:
        values = [(v.params or {}).get(name) for v in versions]
        rows.append({"name": name, "values": values, "differs": len(set(values)) > 1})
    return rows


def comparison_body(result: Comparison) -> dict:
    """The comparison as the API returns it: the same numbers the page shows."""
    return {
        "model": result.entity.ref,
        "baseline": result.baseline.version,
        "versions": [{"version": v.version, "aliases": v.aliases, "runId": v.run_id,
                      "runName": v.experiment_run.name if v.experiment_run else "",
                      "inputs": inputs} for v, inputs in zip(result.versions, result.inputs, strict=True)],
        "metrics": result.metrics,
        "params": result.params,
    }


@dataclass(frozen=True)
class DatasetClaim:
    """A Dataset entity whose `openlineage.io/dataset` annotation names a source, with what decides who
    may see it."""

    pk: int
    ref: str
    visibility: str
    owner_team_id: int | None


def dataset_claims(keys: set[tuple[str, str]]) -> dict[tuple[str, str], list[DatasetClaim]]:
    """{(namespace, name): the Dataset entities annotated with it, oldest first}, whoever may see them:
    the caller decides which it may name (one query)."""
    if not keys:
        return {}
    wanted = {f"{ns}/{name}": (ns, name) for ns, name in keys}
    lookup = {f"data__metadata__annotations__{DATASET_ANNOTATION}__in": list(wanted)}
    claims: dict[tuple[str, str], list[DatasetClaim]] = {}
    rows = (Entity.objects.filter(kind_key="dataset").filter(Q(**lookup)).order_by("pk")
            .values_list("pk", "ref", "visibility", "owner_team_id", "data__metadata__annotations"))
    for pk, ref, visibility, team_id, marks in rows:
        value = marks.get(DATASET_ANNOTATION) if isinstance(marks, dict) else None
        key = wanted.get(value) if isinstance(value, str) else None
        if key is not None:
            claims.setdefault(key, []).append(DatasetClaim(pk, ref, visibility, team_id))
    return claims


def dataset_matches(keys: set[tuple[str, str]], names: set[str]) -> tuple[dict, dict]:
    """Dataset entities for run inputs: ({(namespace, name): entity id} by the `openlineage.io/dataset`
    annotation, {lower-cased name: entity id} by entity name). Two queries; used by the MLflow sync only,
    whose links pages filter by visibility when they show them (`visible_dataset_ids`)."""
    by_key = {key: found[0].pk for key, found in dataset_claims(keys).items()}
    by_name: dict = {}
    lowered = {n.lower()[:63] for n in names if n}
    if lowered:
        for pk, name_key in Entity.objects.filter(kind_key="dataset", name_key__in=lowered).values_list("pk", "name_key"):
            by_name.setdefault(name_key, pk)
    return by_key, by_name
