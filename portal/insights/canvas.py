"""The capability canvas: personas → journeys → capabilities → KPIs, kept as YAML in the repository.

Owns: loading `canvas.yaml` safely (the catalog's bounded YAML loader: no tags, no duplicate keys,
alias and depth caps), validating it (JSON Schema `canvas.schema.json`, then the rules a schema cannot
state: unique ids, URL names that exist, amber on the worse side of the target), and evaluating it —
each KPI through the named query of `kpis.py`, each in its own savepoint so that one failing query
is shown as broken while the rest renders. Every problem names its place in the file
(`canvas.yaml:42: personas[1].journeys[0]…: …`).
"""

from __future__ import annotations

import copy
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from jsonschema import Draft7Validator

from catalog.descriptors.errors import path_str
from catalog.descriptors.loader import load_documents

from . import kpis

logger = logging.getLogger(__name__)
DEFAULT_PATH = Path(__file__).resolve().with_name("canvas.yaml")
SCHEMA_PATH = Path(__file__).resolve().with_name("canvas.schema.json")
MAX_BYTES = 256 * 1024


@dataclass(frozen=True)
class Problem:
    message: str
    source: str
    line: int | None = None
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return ": ".join(p for p in (where, self.path, self.message) if p)


class CanvasInvalid(Exception):
    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


def canvas_path() -> Path:
    """The canvas file: the shipped one unless a deployment points `PLINTH_INSIGHTS_CANVAS` elsewhere."""
    return Path(getattr(settings, "PLINTH_INSIGHTS_CANVAS", "") or DEFAULT_PATH)


@cache
def _validator() -> Draft7Validator:
    return Draft7Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def parse(text: str | bytes, source: str) -> tuple[dict | None, list[Problem]]:
    """The canvas data and every problem with it (data is None when there are problems)."""
    docs, errors = load_documents(text, source, max_bytes=MAX_BYTES)
    if errors:
        return None, [Problem(e.message, source, e.line, e.field) for e in errors]
    if len(docs) != 1:
        return None, [Problem(f"expected one YAML document, found {len(docs)}", source, 1)]
    doc = docs[0]

    def line_of(parts: list) -> int | None:
        parts = list(parts)
        while parts:
            if (line := doc.field_lines.get(path_str(parts))) is not None:
                return line
            parts.pop()
        return doc.line

    problems = [Problem(message, source, line_of(where), path_str(where))
                for message, where in _schema_problems(doc.data)]
    if not problems:
        problems = [Problem(message, source, line_of(where), path_str(where))
                    for message, where in _rule_problems(doc.data)]
    return (None, problems) if problems else (doc.data, [])


_parsed: dict[tuple, tuple[dict | None, list[Problem]]] = {}


def load(path: Path | None = None) -> dict:
    """The validated canvas, or CanvasInvalid naming each problem's line and path. Parsing and
    validating cost a page a few tens of milliseconds: the result is kept per file, path, size and
    modification time, so an edited file is read again (a copy per process; never shared state)."""
    path = path or canvas_path()
    try:
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        if key not in _parsed:
            text = path.read_bytes()
            _parsed.clear()  # one canvas at a time: the entry of an older version goes
            _parsed[key] = parse(text, path.name)
    except OSError as exc:
        raise CanvasInvalid([Problem(f"cannot read the canvas: {exc.strerror}", str(path))]) from None
    data, problems = _parsed[key]
    if problems:
        raise CanvasInvalid(problems)
    return copy.deepcopy(data)


def _schema_problems(data: Any) -> list[tuple[str, list]]:
    out = []
    for error in sorted(_validator().iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1]
            out.append((f"{missing} is required", [*path, missing]))
        elif error.validator == "additionalProperties":
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
            out.append((f"unknown field(s) {', '.join(map(str, extra))}", path))
        elif error.validator == "enum":
            out.append((f"must be one of {', '.join(map(str, error.validator_value))}; got {error.instance!r}", path))
        else:
            out.append((error.message[:300], path))
    return out


def _rule_problems(data: dict) -> list[tuple[str, list]]:
    out: list[tuple[str, list]] = []

    def unique(items: list, where: list) -> None:
        seen: set[str] = set()
        for i, item in enumerate(items):
            if item["id"] in seen:
                out.append((f"duplicate id {item['id']!r}", [*where, i, "id"]))
            seen.add(item["id"])

    unique(data["personas"], ["personas"])
    for p, persona in enumerate(data["personas"]):
        unique(persona["journeys"], ["personas", p, "journeys"])
        for j, journey in enumerate(persona["journeys"]):
            unique(journey["capabilities"], ["personas", p, "journeys", j, "capabilities"])
            for c, capability in enumerate(journey["capabilities"]):
                here = ["personas", p, "journeys", j, "capabilities", c]
                unique(capability["kpis"], [*here, "kpis"])
                for i, provider in enumerate(capability["provided_by"]):
                    if "feature" in provider and "entity" in provider:
                        out.append(("name either a feature or an entity, not both", [*here, "provided_by", i]))
                    elif "feature" in provider:
                        try:
                            reverse(provider["feature"])
                        except NoReverseMatch:
                            out.append((f"no portal page is named {provider['feature']!r} (a URL name without "
                                        "arguments)", [*here, "provided_by", i, "feature"]))
                for k, kpi in enumerate(capability["kpis"]):
                    worse = kpi["amber"] > kpi["target"] if kpi["direction"] == "higher" else (
                        kpi["amber"] < kpi["target"])
                    if worse:
                        side = "at or below" if kpi["direction"] == "higher" else "at or above"
                        out.append((f"amber ({kpi['amber']}) must be {side} the target ({kpi['target']}) when "
                                    f"{kpi['direction']} is better", [*here, "kpis", k, "amber"]))
    return out


def unknown_queries(data: dict) -> list[str]:
    """KPIs naming a query the registry does not have (a warning: the page shows them as broken)."""
    return [f"{kpi_path}: unknown query {kpi['query']!r}" for kpi_path, kpi in iter_kpis(data)
            if kpi["query"] not in kpis.REGISTRY]


def iter_kpis(data: dict):
    for p, persona in enumerate(data["personas"]):
        for j, journey in enumerate(persona["journeys"]):
            for c, capability in enumerate(journey["capabilities"]):
                for k, kpi in enumerate(capability["kpis"]):
                    yield path_str(["personas", p, "journeys", j, "capabilities", c, "kpis", k]), kpi


# -- evaluation -----------------------------------------------------------------------------------


@dataclass
class KpiResult:
    spec: dict
    current: float | None = None
    previous: float | None = None
    status: str = "nodata"  # green, amber, red, nodata, broken
    reason: str = ""  # why broken

    @property
    def name(self) -> str:
        return self.spec["name"]

    @property
    def change(self) -> float | None:
        """current − previous at the precision the page prints (one decimal): a change that prints as
        0.0 is no change, so it gets no arrow, no sign and no better/worse colour (not "▼ −0.0 h")."""
        if self.current is None or self.previous is None:
            return None
        return round(self.current - self.previous, 1) + 0.0  # + 0.0 turns a rounded -0.0 into 0.0

    @property
    def trend(self) -> str:
        """better, worse, same, or "" (no previous value)."""
        change = self.change
        if change is None:
            return ""
        if change == 0:
            return "same"
        return "better" if (change > 0) == (self.spec["direction"] == "higher") else "worse"

    @property
    def delta(self) -> str:
        change = self.change
        if change is None:
            return ""
        if change == 0:
            return "±0"
        return ("+" if change > 0 else "−") + fmt(abs(change), self.spec["unit"])

    @property
    def arrow(self) -> str:
        """Which way the value moved (its colour says whether that is good); none when it did not."""
        change = self.change
        if not change:
            return ""
        return "▲" if change > 0 else "▼"

    @property
    def value_text(self) -> str:
        return fmt(self.current, self.spec["unit"])

    @property
    def target_text(self) -> str:
        sign = "≥" if self.spec["direction"] == "higher" else "≤"
        return f"{sign} {fmt(self.spec['target'], self.spec['unit'])}"


UNITS = {"percent": " %", "days": " days", "hours": " h", "seconds": " s", "count": "", "ratio": ""}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.1f}"
    if unit == "days" and value == 1:
        return f"{text} day"
    return text + UNITS[unit]


def status_of(value: float | None, spec: dict) -> str:
    if value is None:
        return "nodata"
    if spec["direction"] == "higher":
        return "green" if value >= spec["target"] else "amber" if value >= spec["amber"] else "red"
    return "green" if value <= spec["target"] else "amber" if value <= spec["amber"] else "red"


def evaluate_kpi(spec: dict, period: kpis.Period) -> KpiResult:
    """One KPI; any failure becomes a broken result with its reason, never an exception. The
    savepoint keeps a failed statement from poisoning the rest of the page's transaction
    (PostgreSQL refuses every later statement of an aborted transaction)."""
    result = KpiResult(spec)
    try:
        with transaction.atomic():
            value = kpis.run(spec["query"], spec.get("params"), period)
    except kpis.KpiError as exc:
        result.status, result.reason = "broken", str(exc)
        return result
    except Exception as exc:
        logger.exception("canvas KPI %s (query %s) failed", spec["id"], spec["query"])
        result.status, result.reason = "broken", f"the query failed: {type(exc).__name__}: {str(exc)[:200]}"
        return result
    result.current, result.previous = value.current, value.previous
    result.status = status_of(value.current, spec)
    return result


@dataclass
class Evaluated:
    data: dict
    period: kpis.Period
    personas: list[dict] = field(default_factory=list)  # the data's tree, each kpi replaced by KpiResult

    @property
    def results(self) -> list[KpiResult]:
        return [k for p in self.personas for j in p["journeys"] for c in j["capabilities"] for k in c["kpis"]]

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(("green", "amber", "red", "nodata", "broken"), 0)
        for result in self.results:
            out[result.status] += 1
        return out


def evaluate(data: dict, *, now: datetime | None = None) -> Evaluated:
    """Every KPI of the canvas over the last `period_days` full days (ending at today's midnight,
    UTC: rollups of the running day are still filling). Identical queries are computed once."""
    now = now or datetime.now(UTC)
    end = now.replace(hour=0, minute=0, second=0, microsecond=0)
    period = kpis.Period(end - timedelta(days=data["period_days"]), end)
    done: dict[str, KpiResult] = {}
    out = Evaluated(data, period)
    with kpis.shared_reads():
        _evaluate_into(out, data, period, done)
    return out


def _evaluate_into(out: Evaluated, data: dict, period: kpis.Period, done: dict[str, KpiResult]) -> None:
    for persona in data["personas"]:
        journeys = []
        for journey in persona["journeys"]:
            capabilities = []
            for capability in journey["capabilities"]:
                results = []
                for spec in capability["kpis"]:
                    key = json.dumps([spec["query"], spec.get("params") or {}], sort_keys=True)
                    if key not in done:
                        done[key] = evaluate_kpi(spec, period)
                    first = done[key]
                    result = KpiResult(spec, first.current, first.previous, first.status, first.reason)
                    if result.status not in ("broken", "nodata"):
                        result.status = status_of(result.current, spec)
                    results.append(result)
                capabilities.append({**capability, "kpis": results})
            journeys.append({**journey, "capabilities": capabilities})
        out.personas.append({**persona, "journeys": journeys})


def provider_links(data: dict, user: Any) -> dict[str, str | None]:
    """Where each capability's providers live: a portal page's address, or the page of a catalog
    entity the user may see (None: not in the catalog, or not visible to them — shown unlinked)."""
    from catalog.models import Entity
    from portal.accounts.permissions import filter_visible

    providers = [provider for persona in data["personas"] for journey in persona["journeys"]
                 for capability in journey["capabilities"] for provider in capability["provided_by"]]
    links: dict[str, str | None] = {}
    refs = {p["entity"] for p in providers if "entity" in p}
    found = {ref: (kind, namespace, name) for ref, kind, namespace, name in filter_visible(
        Entity.objects.filter(ref__in=refs), user).values_list("ref", "kind_key", "namespace", "name")}
    for provider in providers:
        if "feature" in provider:
            links[provider["feature"]] = reverse(provider["feature"])
        else:
            where = found.get(provider["entity"])
            links[provider["entity"]] = reverse("catalog:entity-detail", args=where) if where else None
    return links
