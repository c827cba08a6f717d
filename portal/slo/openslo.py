"""OpenSLO v1 files: reading one next to an entity's descriptor and checking it.

Owns: the annotation (`plinth.dev/openslo`), the path rule (relative to the descriptor, never outside
the location's folder — the rule techdocs and model cards follow), the subset of OpenSLO v1 Plinth
evaluates (kind SLO with an inline `indicator` or an `indicatorRef` to a kind SLI in the same file;
ratioMetric good/total or bad/total, thresholdMetric; rolling or calendar timeWindow; budgetingMethod
Occurrences, Timeslices or RatioTimeslices; objectives) and one `Spec` per SLO objective. Every problem
is an `OpenSLOError` naming the file, the document and the field; a file with any problem yields no
Spec at all (nothing is stored half). Pure: no database, no Prometheus.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from catalog.descriptors.errors import path_str
from catalog.descriptors.loader import Limits, nul_places, parse_stream

ANNOTATION = "plinth.dev/openslo"
API_VERSION = "openslo/v1"
KINDS = ("SLO", "SLI")
METHODS = ("Occurrences", "Timeslices", "RatioTimeslices")
OPS = {"lt": "<", "lte": "<=", "gt": ">", "gte": ">="}
WINDOW = "{{.window}}"  # in a query: the range Plinth asks about (`28d`, `1h`, `3600s`…), as Sloth does
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")  # OpenSLO names are DNS labels
DURATION = re.compile(r"^([1-9][0-9]{0,5})([smhdwMQY])$")
ROLLING_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
CALENDAR_UNITS = ("d", "w", "M", "Q", "Y")
# The longest rolling window or time slice: a year, as long as the longest calendar window (1Y). OpenSLO
# sets no bound, but a window must fit in Prometheus' retention and, past about 2,000 years, `now − window`
# falls before year 1 and every evaluation raised OverflowError (docs/operations.md, "Declaring SLOs").
MAX_ROLLING_SECONDS = 366 * 86400
MAX_ROLLING_TEXT = "366d"
CALENDAR_SHORTEST = {"d": 86400, "w": 7 * 86400, "M": 28 * 86400, "Q": 90 * 86400, "Y": 365 * 86400}
SELECTOR = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*\s*(\{[^{}]*\})?|\{[^{}]*\})\s*$")
MAX_QUERY = 4000
MAX_OBJECTIVE = 200  # an objective's displayName (the SLO row's `objective` column)


@dataclass
class OpenSLOError:
    message: str
    source: str = ""
    field: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.source + (f":{self.line}" if self.line else "")
        return ": ".join(p for p in (where, self.field, self.message) if p)


@dataclass(frozen=True)
class Window:
    """A rolling window (`seconds` back from now) or a calendar one (the current day, week, month,
    quarter or year in `tz`, from `start` on)."""

    text: str
    rolling: bool
    seconds: int = 0  # rolling
    unit: str = ""  # calendar: d, w, M, Q, Y
    tz: str = "UTC"

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        """(start, end) of the window that contains `now`; a rolling window ends at now. A calendar window
        runs from the first instant of its first local day to the first instant of the day after it, so a
        day with a daylight-saving change lasts the 23 or 25 hours that pass."""
        if self.rolling:
            return now - timedelta(seconds=self.seconds), now
        zone = ZoneInfo(self.tz)
        day = now.astimezone(zone).date()
        if self.unit == "d":
            first, after = day, day + timedelta(days=1)
        elif self.unit == "w":  # ISO weeks start on Monday
            first = day - timedelta(days=day.weekday())
            after = first + timedelta(days=7)
        else:
            months = {"M": 1, "Q": 3, "Y": 12}[self.unit]
            first = day.replace(day=1, month=(day.month - 1) // months * months + 1)
            month = first.month - 1 + months
            after = first.replace(year=first.year + month // 12, month=month % 12 + 1)
        return day_start(first, zone), day_start(after, zone)


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The first instant of the local `day` in `zone`. Not simply local 00:00: where a clock change is at
    midnight, 00:00 may happen twice (America/Havana in November: the day starts at the first one) or not
    at all (America/Santiago in September, Asia/Beirut in March: the day starts when the clock jumps)."""
    wall = datetime.combine(day, time.min)
    early, late = sorted(wall.replace(tzinfo=zone, fold=fold).astimezone(UTC) for fold in (0, 1))
    if early.astimezone(zone).date() >= day:  # 00:00 exists (once, or twice: the earlier one)
        return early.astimezone(zone)
    # 00:00 falls in a gap: the day starts at the jump, which lies between the two readings of 00:00.
    while late - early > timedelta(seconds=1):
        middle = early + (late - early) / 2
        early, late = (middle, late) if middle.astimezone(zone).date() < day else (early, middle)
    return late.replace(microsecond=0).astimezone(zone)


@dataclass(frozen=True)
class Spec:
    """One SLO objective, everything its evaluation needs (stored as JSON with the SLO row)."""

    name: str  # the SLO's metadata.name
    objective: str  # the objective's displayName, or "objective-<n>" (n from 1) when it has none
    display_name: str
    description: str
    indicator: str  # "ratio" | "threshold"
    counter: bool
    good: str
    bad: str
    total: str
    metric: str  # thresholdMetric's query
    op: str  # lt/lte/gt/gte (threshold objectives)
    value: float | None
    target: float
    budgeting: str
    window: Window
    slice_seconds: int = 0  # Timeslices / RatioTimeslices (and a threshold's resolution)
    slice_text: str = ""
    slice_target: float | None = None  # Timeslices with a ratioMetric: a slice is good at or above it
    source: str = ""  # the file, relative to the descriptor's folder

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Spec:
        data = dict(data)
        data["window"] = Window(**data["window"])
        return cls(**data)

    @property
    def key(self) -> tuple[str, str]:
        return self.name, self.objective


class SourceError(Exception):
    """The file cannot be read at all (no annotation target, outside the location, missing, too big)."""


def annotation_path(annotations: dict) -> str | None:
    value = annotations.get(ANNOTATION) if isinstance(annotations, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def resolve(entity, relative: str) -> str:
    """The real path of `relative` next to the entity's descriptor, inside its location's folder (the
    same rule as docs and model cards: portal.techdocs.builder), or SourceError saying why not."""
    from portal.techdocs.builder import BuildError, location_root, resolve_relative

    try:
        root = location_root(entity)
        return resolve_relative(entity, relative, root)
    except BuildError as exc:
        raise SourceError(f"{ANNOTATION}: {exc}") from None


def read_file(path: str, relative: str, max_bytes: int) -> str:
    if not os.path.isfile(path):
        raise SourceError(f"{ANNOTATION}: the file '{relative[:200]}' does not exist next to the descriptor.")
    size = os.path.getsize(path)
    if size > max_bytes:
        raise SourceError(f"{relative[:200]}: {size} bytes, over the {max_bytes // 1024} KiB cap.")
    with open(path, "rb") as fh:
        body = fh.read(max_bytes + 1)
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{relative[:200]}: not valid UTF-8 (byte {exc.start}).") from None


class _Doc:
    """One YAML document being checked: typed getters that record an error naming file, field, line."""

    def __init__(self, source: str, index: int, value, lines: dict, errors: list[OpenSLOError]):
        self.source, self.index, self.value, self.lines, self.errors = source, index, value, lines, errors

    def fail(self, parts: list, message: str) -> None:
        name = path_str(parts)
        line = self.lines.get(name)
        while line is None and parts:
            parts = parts[:-1]
            line = self.lines.get(path_str(parts)) if parts else None
        self.errors.append(OpenSLOError(message, self.source, f"document {self.index + 1}: {name}" if name
                                        else f"document {self.index + 1}", line))

    def get(self, node, parts: list, key: str, kind, *, required: bool = True):
        value = node.get(key) if isinstance(node, dict) else None
        if value is None:
            if required:
                self.fail([*parts, key], "is required")
            return None
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                self.fail([*parts, key], f"must be a number, not {value!r}"[:200])
                return None
            return float(value)
        if not isinstance(value, kind):
            expected = {str: "a string", dict: "a mapping", list: "a list", bool: "true or false"}[kind]
            self.fail([*parts, key], f"must be {expected}")
            return None
        return value


def parse(text: str, source: str) -> tuple[list[Spec], list[OpenSLOError]]:
    """The SLO objectives a file declares, or every problem found (then no Spec at all)."""
    values, problems = parse_stream(text, source, Limits(max_bytes=len(text.encode()) + 1))
    errors = [OpenSLOError(p.message, source, p.field, p.line) for p in problems]
    docs = [_Doc(source, index, value, lines, errors) for index, _line, value, lines in values]
    if not docs and not errors:
        errors.append(OpenSLOError("contains no OpenSLO document", source))
    slis: dict[str, tuple[_Doc, dict]] = {}
    slos: list[_Doc] = []
    for doc in docs:
        if not isinstance(doc.value, dict):
            doc.fail([], "must be a mapping (apiVersion, kind, metadata, spec)")
            continue
        for parts, in_key in nul_places(doc.value, limit=10):  # PostgreSQL would refuse the row
            doc.fail(parts, f"{'a key ' if in_key else ''}must not contain a NUL character")
        api = doc.get(doc.value, [], "apiVersion", str)
        kind = doc.get(doc.value, [], "kind", str)
        if api is not None and api != API_VERSION:
            doc.fail(["apiVersion"], f"must be {API_VERSION}, not {api[:60]!r}")
        if kind is not None and kind not in KINDS:
            doc.fail(["kind"], f"must be SLO or SLI, not {kind[:60]!r}")
        metadata = doc.get(doc.value, [], "metadata", dict)
        name = doc.get(metadata, ["metadata"], "name", str) if metadata is not None else None
        if name is not None and not NAME.match(name):
            doc.fail(["metadata", "name"], "must be lowercase letters, digits and dashes (a DNS label, up to 63)")
        spec = doc.get(doc.value, [], "spec", dict)
        if kind == "SLI" and name and spec is not None:
            if name in slis:
                doc.fail(["metadata", "name"], f"a second SLI named {name!r}")
            slis[name] = (doc, spec)
        elif kind == "SLO":
            slos.append(doc)
    if docs and not slos and not errors:
        errors.append(OpenSLOError("declares no kind: SLO document", source))
    out: list[Spec] = []
    seen: set[str] = set()
    relative = source
    for doc in slos:
        out.extend(_slo(doc, slis, relative))
        metadata = doc.value.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        if isinstance(name, str):
            if name in seen:
                doc.fail(["metadata", "name"], f"a second SLO named {name!r}")
            seen.add(name)
    return ([] if errors else out), errors


def _slo(doc: _Doc, slis: dict, source: str) -> list[Spec]:
    metadata = doc.value.get("metadata") if isinstance(doc.value.get("metadata"), dict) else {}
    spec = doc.value.get("spec")
    if not isinstance(spec, dict):
        return []
    base = ["spec"]
    indicator = _indicator(doc, spec, slis)
    window = _window(doc, spec)
    method = doc.get(spec, base, "budgetingMethod", str)
    if method is not None and method not in METHODS:
        doc.fail([*base, "budgetingMethod"], f"must be one of {', '.join(METHODS)}, not {method[:60]!r}")
        method = None
    objectives = doc.get(spec, base, "objectives", list)
    if objectives is not None and not objectives:
        doc.fail([*base, "objectives"], "must list at least one objective")
    if indicator and indicator["indicator"] == "threshold" and method == "RatioTimeslices":
        doc.fail([*base, "budgetingMethod"], "RatioTimeslices needs a ratioMetric indicator")
    out = []
    names: set[str] = set()
    for n, objective in enumerate(objectives or []):
        parts = [*base, "objectives", n]
        if not isinstance(objective, dict):
            doc.fail(parts, "must be a mapping (target, and op/value for a thresholdMetric)")
            continue
        label = doc.get(objective, parts, "displayName", str, required=False) or f"objective-{n + 1}"
        if len(label) > MAX_OBJECTIVE:
            doc.fail([*parts, "displayName"], f"is {len(label):,} characters long; at most {MAX_OBJECTIVE} are accepted")
        if label in names:
            doc.fail([*parts, "displayName"], f"a second objective named {label[:60]!r}")
        names.add(label)
        target = doc.get(objective, parts, "target", float)
        if target is not None and not 0 < target < 1:
            doc.fail([*parts, "target"], f"must be between 0 and 1 (exclusive), e.g. 0.99 for 99 %, not {target:g}")
            target = None
        op = value = None
        if indicator and indicator["indicator"] == "threshold":
            op = doc.get(objective, parts, "op", str)
            if op is not None and op not in OPS:
                doc.fail([*parts, "op"], f"must be one of {', '.join(OPS)}, not {op[:20]!r}")
            value = doc.get(objective, parts, "value", float)
        slice_seconds, slice_text, slice_target = 0, "", None
        if method in ("Timeslices", "RatioTimeslices"):
            slice_text = doc.get(objective, parts, "timeSliceWindow", str) or ""
            slice_seconds = _rolling_seconds(doc, [*parts, "timeSliceWindow"], slice_text) if slice_text else 0
            if slice_seconds and window and slice_seconds > (
                    window.seconds if window.rolling else CALENDAR_SHORTEST[window.unit]):
                doc.fail([*parts, "timeSliceWindow"], "is longer than the timeWindow" + (
                    f" (a {window.text} calendar window can be as short as {CALENDAR_SHORTEST[window.unit] // 86400}d)"
                    if not window.rolling and window.unit in "MQY" else ""))
            if method == "Timeslices" and indicator and indicator["indicator"] == "ratio":
                slice_target = doc.get(objective, parts, "timeSliceTarget", float)
                if slice_target is not None and not 0 < slice_target <= 1:
                    doc.fail([*parts, "timeSliceTarget"], f"must be in (0, 1], not {slice_target:g}")
        if None in (target, window, method, indicator) or (op is None and indicator["indicator"] == "threshold"):
            continue
        if indicator["indicator"] == "threshold" and value is None:
            continue
        if method in ("Timeslices", "RatioTimeslices") and not slice_seconds:
            continue
        if method == "Timeslices" and indicator["indicator"] == "ratio" and slice_target is None:
            continue
        out.append(Spec(
            name=metadata.get("name", ""), objective=label,
            display_name=str(metadata.get("displayName") or spec.get("description") or metadata.get("name", ""))[:200],
            description=str(spec.get("description") or "")[:1000], target=target, op=op or "", value=value,
            budgeting=method, window=window, slice_seconds=slice_seconds, slice_text=slice_text,
            slice_target=slice_target, source=source, **indicator,
        ))
    return out


def _rolling_seconds(doc: _Doc, parts: list, text: str) -> int:
    match = DURATION.match(text)
    if not match or match.group(2) not in ROLLING_UNITS:
        doc.fail(parts, f"must be a duration such as 5m, 1h, 28d or 4w, not {text[:40]!r}")
        return 0
    seconds = int(match.group(1)) * ROLLING_UNITS[match.group(2)]
    if seconds > MAX_ROLLING_SECONDS:
        doc.fail(parts, f"must be at most a year ({MAX_ROLLING_TEXT}), not {text!r}")
        return 0
    return seconds


def _window(doc: _Doc, spec: dict) -> Window | None:
    parts = ["spec", "timeWindow"]
    windows = doc.get(spec, ["spec"], "timeWindow", list)
    if windows is None:
        return None
    if len(windows) != 1 or not isinstance(windows[0], dict):
        doc.fail(parts, "must list exactly one window ({duration, isRolling})")
        return None
    w = windows[0]
    parts = [*parts, 0]
    text = doc.get(w, parts, "duration", str)
    rolling = doc.get(w, parts, "isRolling", bool, required=False)
    if text is None:
        return None
    if rolling is None:
        rolling = "calendar" not in w
    if rolling:
        seconds = _rolling_seconds(doc, [*parts, "duration"], text)
        return Window(text=text, rolling=True, seconds=seconds) if seconds else None
    match = DURATION.match(text)
    if not match or match.group(1) != "1" or match.group(2) not in CALENDAR_UNITS:
        doc.fail([*parts, "duration"], f"a calendar window is one of 1d, 1w, 1M, 1Q, 1Y, not {text[:40]!r}")
        return None
    calendar = doc.get(w, parts, "calendar", dict, required=False) or {}
    tz = calendar.get("timeZone", "UTC")
    try:
        ZoneInfo(str(tz))
    except (ZoneInfoNotFoundError, ValueError):
        doc.fail([*parts, "calendar", "timeZone"], f"is not a known time zone: {str(tz)[:60]!r}")
        return None
    return Window(text=text, rolling=False, unit=match.group(2), tz=str(tz))


def _indicator(doc: _Doc, spec: dict, slis: dict) -> dict | None:
    if "indicator" in spec and "indicatorRef" in spec:
        doc.fail(["spec", "indicatorRef"], "give either indicator or indicatorRef, not both")
        return None
    if "indicatorRef" in spec:
        ref = doc.get(spec, ["spec"], "indicatorRef", str)
        if ref is None:
            return None
        if ref not in slis:
            doc.fail(["spec", "indicatorRef"], f"no kind: SLI named {ref[:63]!r} in this file")
            return None
        sli_doc, sli_spec = slis[ref]
        return _sli(sli_doc, sli_spec, ["spec"])
    sli = doc.get(spec, ["spec"], "indicator", dict)
    if sli is None:
        return None
    inner = doc.get(sli, ["spec", "indicator"], "spec", dict)
    return _sli(doc, inner, ["spec", "indicator", "spec"]) if inner is not None else None


def _sli(doc: _Doc, spec: dict, parts: list) -> dict | None:
    ratio, threshold = spec.get("ratioMetric"), spec.get("thresholdMetric")
    if (ratio is None) == (threshold is None):
        doc.fail(parts, "needs exactly one of ratioMetric or thresholdMetric")
        return None
    out = {"indicator": "ratio" if ratio is not None else "threshold", "counter": False,
           "good": "", "bad": "", "total": "", "metric": ""}
    if threshold is not None:
        metric = _query(doc, threshold, [*parts, "thresholdMetric"], counter=False)
        if metric is None:
            return None
        out["metric"] = metric
        return out
    if not isinstance(ratio, dict):
        doc.fail([*parts, "ratioMetric"], "must be a mapping (counter, good or bad, total)")
        return None
    rp = [*parts, "ratioMetric"]
    counter = doc.get(ratio, rp, "counter", bool, required=False)
    out["counter"] = bool(counter)
    if ("good" in ratio) == ("bad" in ratio):
        doc.fail(rp, "needs exactly one of good or bad, and total")
        return None
    which = "good" if "good" in ratio else "bad"
    first = doc.get(ratio, rp, which, dict)
    total = doc.get(ratio, rp, "total", dict)
    q1 = _query(doc, first, [*rp, which], counter=out["counter"]) if first is not None else None
    q2 = _query(doc, total, [*rp, "total"], counter=out["counter"]) if total is not None else None
    if q1 is None or q2 is None:
        return None
    out[which], out["total"] = q1, q2
    return out


def _query(doc: _Doc, node: dict, parts: list, *, counter: bool) -> str | None:
    source = doc.get(node, parts, "metricSource", dict)
    if source is None:
        return None
    sp = [*parts, "metricSource"]
    kind = source.get("type", "Prometheus")
    if str(kind).lower() != "prometheus":
        doc.fail([*sp, "type"], f"only Prometheus is supported, not {str(kind)[:40]!r}")
        return None
    inner = doc.get(source, sp, "spec", dict)
    query = doc.get(inner, [*sp, "spec"], "query", str) if inner is not None else None
    if query is None:
        return None
    query = query.strip()
    if not query or len(query) > MAX_QUERY or "\x00" in query:
        doc.fail([*sp, "spec", "query"], f"must be a PromQL query of 1–{MAX_QUERY} characters")
        return None
    threshold = parts[-1] == "thresholdMetric"  # a gauge needs no range; a histogram uses {{.window}}
    if not threshold and WINDOW not in query and not (counter and SELECTOR.match(query)):
        doc.fail([*sp, "spec", "query"], f"must contain {WINDOW} (the range Plinth asks about, e.g. "
                 f"sum(increase(http_requests_total[{WINDOW}]))), or be a plain counter selector with "
                 "ratioMetric.counter: true")
        return None
    return query
