"""Reading OpenLineage events from a request body: caps before parsing, the JSON Schema, the checks the
schema leaves out (runId a UUID, a plausible eventTime, names without control characters), credentials
stripped from every URL, and dataset naming normalised (OpenLineage's naming spec).

Every refusal is an `EventInvalid` naming the field path (`inputs[3].name`, in a batch `[17].run.runId`);
nothing here writes. `portal.lineage.services.lineage_ingest` stores what this returns."""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlunsplit

import orjson
from django.conf import settings

from portal.core import urlparts

from . import spec as spec_module

MAX_DEPTH = 64  # levels of nesting in one event (a facet 200 levels deep is refused, naming where)
SCAN_DEPTH = 512  # the raw body is refused before parsing beyond this (protects the parser itself)
MAX_NAME = 1000  # characters of a namespace or a name
MAX_FUTURE = timedelta(days=1)  # clock skew accepted for eventTime
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RUN_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A lone surrogate (\ud800 without its pair) is no character: UTF-8 cannot encode it, jsonb refuses it.
_SURROGATE = re.compile("[\ud800-\udfff]")
# user:password@ (a bare name@ is no secret, and is ABFS's and WASB's container: kept there).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^/?#@\s:]*:[^/?#@\s]*@")
_SECRET_PARAM = re.compile(
    r"(?i)([?&;](?:password|passwd|pwd|secret|token|access_?key|secret_?key|sig|signature|sas|api_?key)=)[^&;#\s]*")
_SCHEME_ALIASES = {"postgresql": "postgres", "s3a": "s3", "s3n": "s3", "mysql+pymysql": "mysql",
                   "abfs": "abfss", "wasb": "wasbs"}
_OBJECT_STORES = {"s3", "gs", "abfss", "wasbs", "hdfs", "file"}
_CONTAINER_IN_USERINFO = {"abfss", "wasbs"}  # abfss://{container}@{account}.dfs.core.windows.net
_NOT_BRACKETS_OR_QUOTES = bytes(b for b in range(256) if b not in b'"[]{}')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class EventInvalid(Exception):
    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message = path, message

    def at(self, prefix: str) -> EventInvalid:
        path = f"{prefix}.{self.path}" if self.path and not self.path.startswith("[") else f"{prefix}{self.path}"
        return EventInvalid(path, self.message)


@dataclass
class DatasetRef:
    namespace: str
    name: str
    facets: dict = field(default_factory=dict)
    io_facets: dict = field(default_factory=dict)  # inputFacets / outputFacets


@dataclass
class Checked:
    """One event, checked and normalised; `payload` is the event as stored (credentials stripped)."""

    kind: str  # run | dataset | job
    event_time: datetime
    payload: dict
    event_type: str = ""
    run_id: uuid.UUID | None = None
    run_facets: dict = field(default_factory=dict)
    job: DatasetRef | None = None  # namespace, name, facets of the job
    dataset: DatasetRef | None = None  # a DatasetEvent's dataset
    inputs: list[DatasetRef] = field(default_factory=list)
    outputs: list[DatasetRef] = field(default_factory=list)
    payload_json: str = ""  # `payload` as JSON, made once: it is stored, and it bounds every facet's size


@contextlib.contextmanager
def collector_paused():
    """Python's cycle collector off while a request's events are parsed, checked and stored.

    A batch is hundreds of thousands of new dicts, lists and strings that live until the batch is
    stored; every 700 allocations the collector ran, and its older generations walked the whole batch
    again and again: about a quarter of the ingest's CPU time (`manage.py lineage bench`, steady state).
    JSON values hold no reference cycles, so pausing it collects nothing less: reference counting still
    frees everything acyclic at once, and whatever cyclic garbage the request makes (an exception's
    traceback, say) is collected as soon as the collector runs again. Nested uses and a collector that
    was already off are left as they were."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# -- the raw body ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyFacts:
    """What the raw body says about every event in it, so that a clean batch skips the per-event walk."""

    shallow: bool  # no event can be nested deeper than MAX_DEPTH
    plain: bool  # no NUL, no lone surrogate, no URL credentials, no secret query parameter anywhere
    strict: bool = False  # parsed by orjson: no NaN/Infinity, no lone surrogate, no integer beyond 64 bits


# Any \u or \/ escape could hide a NUL, a "://" or an "@" from a search of the raw bytes: walk then.
# Each pattern runs only when a byte it needs is in the body (`in` is a memchr; one regex of
# alternatives tried at every offset cost a quarter of the check of a clean batch).
_BODY_USERINFO = re.compile(rb"://[^/\"\s]*@")
_BODY_SECRET = re.compile(rb"[?&;](?i:password|passwd|pwd|secret|token|access_?key|secret_?key|sig|signature|sas|"
                          rb"api_?key)=")
# A run of 19 digits may be an integer orjson would read as a float (beyond 64 bits): json reads those.
# Found by mapping each digit to "1" and every other byte to "0" and searching for nineteen ones: two C
# passes over the body (the regex `[0-9]{19}` restarted at every digit, 17 ms for a 1,000-event batch
# against 1.4 ms: a tenth of the check of a clean batch).
_DIGITS_AS_ONES = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_LONG_DIGIT_RUN = b"1" * 19
WALK_ALWAYS = BodyFacts(shallow=False, plain=False)


def parse_body(body: bytes) -> tuple[list, bool, BodyFacts]:
    """The events of a body (an event, or an array of them), whether it was an array, and what the raw
    bytes tell about them. Nesting is counted on the raw bytes first: the JSON parser itself recurses."""
    deepest = _deepest(body)
    if deepest > SCAN_DEPTH:
        raise EventInvalid("body", f"nested deeper than {SCAN_DEPTH} levels")
    data, strict = _loads(body)
    if isinstance(data, list):
        if not data:
            raise EventInvalid("body", "an empty array: send at least one event")
        cap = settings.PLINTH_LINEAGE_MAX_BATCH
        if len(data) > cap:
            raise EventInvalid("body", f"{len(data):,} events in one request; at most {cap:,} (send several batches)")
        return data, True, _facts(body, deepest - 1, strict)
    if isinstance(data, dict):
        return [data], False, _facts(body, deepest, strict)
    raise EventInvalid("body", "expected an OpenLineage event (a JSON object) or an array of them")


def _loads(body: bytes) -> tuple[object, bool]:
    """The parsed body, and whether orjson parsed it. orjson (several times faster) reads exactly what
    json reads for the JSON it accepts, but for integers beyond 64 bits (it makes them floats, so a body
    with a run of 19 digits goes to json); what it refuses (NaN, Infinity, 1e400, lone surrogates, a
    BOM, UTF-16, invalid JSON) goes to json, which accepts it or refuses it with the message it always
    gave, except NaN and ±Infinity: not JSON, refused on every database (PostgreSQL's jsonb cannot hold
    them). The result is json.loads's, type for type (tests/lineage/test_body_scan.py)."""
    if not long_digits(body):
        try:
            return orjson.loads(body), True
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite), False
    except (ValueError, RecursionError) as exc:
        raise EventInvalid("body", f"not JSON: {str(exc)[:200]}") from exc


def long_digits(body: bytes) -> bool:
    """Whether the bytes hold a run of 19 or more ASCII digits (what `[0-9]{19}` finds)."""
    return _LONG_DIGIT_RUN in body.translate(_DIGITS_AS_ONES)


def _no_constant(name: str):
    """JSON has no NaN or Infinity (RFC 8259): Python's json reads them, PostgreSQL's jsonb refuses them,
    so a body holding one is refused here on every database, naming the token."""
    raise ValueError(f"{name} is not a JSON number (RFC 8259)")


def _finite(text: str) -> float:
    """A JSON number too large for a float (1e400) would be stored as Infinity: refused the same way."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text[:40]} is out of range for a JSON number")
    return value


def _deepest(body: bytes) -> int:
    """The deepest nesting of a JSON text, without parsing it: escaped backslashes and quotes dropped
    (left to right, as JSON reads them), then only quotes and brackets kept, strings removed, and a
    running sum (all in C: a 10,000-event batch takes milliseconds). Strings go by splitting at the
    quotes and keeping every other piece: the odd pieces are strings, and an unterminated one at the end
    (a cut-off body) goes with them — the parser then refuses the body."""
    marks = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_BRACKETS_OR_QUOTES)
    brackets = b"".join(marks.split(b'"')[::2])
    return max(itertools.accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _facts(body: bytes, deepest_event: int, strict: bool = False) -> BodyFacts:
    # Only bytes orjson read are searched: json also reads UTF-16 and UTF-32 (where "://" and "\\u" are
    # not these bytes) and UTF-8 with encoded lone surrogates; such bodies are walked string by string.
    return BodyFacts(shallow=deepest_event <= MAX_DEPTH, plain=strict and not _suspect(body), strict=strict)


def _suspect(body: bytes) -> bool:
    return (b"\\u" in body or b"\\/" in body or (b"@" in body and _BODY_USERINFO.search(body) is not None)
            or (b"=" in body and _BODY_SECRET.search(body) is not None))


# -- one event --------------------------------------------------------------------------------------


def check(event, spec: spec_module.Spec, facts: BodyFacts = WALK_ALWAYS) -> Checked:
    """Check one parsed event; raises EventInvalid naming the first failing field. `facts` (from
    `parse_body`) lets an event of a clean body skip the walk for depth, NUL and credentials."""
    if not isinstance(event, dict):
        raise EventInvalid("", "an event must be a JSON object")
    kind = _kind(event)
    _caps(event)
    # Depth, NUL, credentials: a stripped copy (the caller's dict is left alone), unless the raw body
    # showed there is nothing to find.
    payload = event if facts.shallow and facts.plain else _walk(event, "", 0)
    _schema(spec.events[kind], payload)
    event_time = _event_time(payload)
    cap = settings.PLINTH_LINEAGE_MAX_FACET_BYTES
    if facts.strict:
        # Only what orjson parsed is written by orjson (it would write NaN as null). A facet is measured
        # as json writes it (ASCII, \u escapes): at most 3 characters per byte orjson writes (\uXXXX for
        # a 2- or 3-byte character, two for a 4-byte one; 1e+16 for 1e16), so an event whose orjson
        # form fits a third of the cap holds no facet over it, and no facet is measured.
        raw = orjson.dumps(payload)
        out = Checked(kind=kind, event_time=event_time, payload=payload, payload_json=raw.decode())
        fits = 3 * len(raw) <= cap
    else:
        out = Checked(kind=kind, event_time=event_time, payload=payload, payload_json=json.dumps(payload))
        fits = len(out.payload_json) <= cap  # no facet is longer than its whole event
    if fits:
        cap = None  # when the event fits, no facet is measured
    memo = facts.strict
    if kind == "dataset":
        out.dataset = _dataset(payload["dataset"], "dataset", spec, "", cap, memo)
        return out
    out.job = _node(payload["job"], "job", "facets:job", spec, cap, memo)
    out.inputs = [_dataset(d, f"inputs[{i}]", spec, "inputFacets", cap, memo)
                  for i, d in enumerate(payload.get("inputs") or [])]
    out.outputs = [_dataset(d, f"outputs[{i}]", spec, "outputFacets", cap, memo)
                   for i, d in enumerate(payload.get("outputs") or [])]
    if kind == "run":
        out.event_type = payload.get("eventType") or "OTHER"
        run = payload["run"]
        try:
            out.run_id = uuid.UUID(run["runId"])
        except (ValueError, AttributeError, TypeError):
            raise EventInvalid("run.runId", f"{str(run['runId'])[:60]!r} is not a UUID") from None
        out.run_facets = _facets(run.get("facets") or {}, "run.facets", "facets:run", spec, cap, memo)
    return out


def _kind(event: dict) -> str:
    if "run" in event or "eventType" in event:
        event_type = event.get("eventType")
        if event_type is not None and event_type not in RUN_TYPES:
            raise EventInvalid("eventType", f"{str(event_type)[:40]!r} is not one of {', '.join(RUN_TYPES)}")
        if "run" not in event:
            raise EventInvalid("run", "a RunEvent needs run (with runId)")
        return "run"
    if "dataset" in event:
        return "dataset"
    if "job" in event:
        return "job"
    raise EventInvalid("", "not an OpenLineage event: expected run + job (RunEvent), dataset (DatasetEvent) "
                           "or job (JobEvent)")


def _caps(event: dict) -> None:
    cap = settings.PLINTH_LINEAGE_MAX_DATASETS
    for key in ("inputs", "outputs"):
        items = event.get(key)
        if isinstance(items, list) and len(items) > cap:
            raise EventInvalid(key, f"{len(items):,} datasets in one event; at most {cap:,}")


def _walk(value, path: str, depth: int):
    """A copy of the value with credentials stripped from URLs; refuses NUL, lone surrogates and
    nesting deeper than MAX_DEPTH, naming the path."""
    if isinstance(value, str):
        if "\x00" in value:
            raise EventInvalid(path, "null characters are not allowed")
        if not value.isascii() and _SURROGATE.search(value):
            raise EventInvalid(path, SURROGATE_MESSAGE)
        return strip_credentials(value) if "://" in value else value
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise EventInvalid(path, f"nested deeper than {MAX_DEPTH} levels")
        out = {}
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if "\x00" in key:
                raise EventInvalid(_printable(where), "null characters are not allowed")
            if not key.isascii() and _SURROGATE.search(key):
                raise EventInvalid(_printable(where), SURROGATE_MESSAGE)
            out[key] = _walk(item, where, depth + 1) if isinstance(item, (dict, list, str)) else item
        return out
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise EventInvalid(path, f"nested deeper than {MAX_DEPTH} levels")
        return [_walk(item, f"{path}[{i}]", depth + 1) if isinstance(item, (dict, list, str)) else item
                for i, item in enumerate(value)]
    return value


SURROGATE_MESSAGE = "a lone surrogate (\\ud800-\\udfff without its pair) is not a character"


def _printable(path: str) -> str:
    """A path naming a key that holds NUL or a lone surrogate, as the sender escaped it (the answer is
    UTF-8 JSON, which cannot carry a lone surrogate)."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", path.replace("\x00", "\\x00"))


def _schema(checker: spec_module.Checker, payload: dict) -> None:
    errors = checker.errors(payload)
    if not errors:
        return
    error = sorted(errors, key=lambda e: (len(e.absolute_path), list(map(str, e.path))))[0]
    path = _path(error.absolute_path)
    message = error.message
    if error.validator == "required":
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        if missing:
            path = f"{path}.{missing[0]}" if path else missing[0]
            message = "required"
    elif error.validator == "not":
        message = "a DatasetEvent carries no run or job, a JobEvent no run"
    raise EventInvalid(path, message[:300])


def _path(parts) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _event_time(payload: dict) -> datetime:
    raw = payload["eventTime"]
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, AttributeError):
        raise EventInvalid("eventTime", f"{str(raw)[:40]!r} is not an ISO 8601 date-time") from None
    # Without an offset (some producers send local-looking times) the time is taken as UTC.
    try:
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:30:00+01:00 or 9999-12-31T23:59:59-01:00: no such UTC time
        raise EventInvalid("eventTime", f"{raw[:40]} is {'in the future' if when.year > 1970 else 'before 1970'}") from None
    if when < EPOCH:
        raise EventInvalid("eventTime", f"{raw[:40]} is before 1970")
    if when > datetime.now(UTC) + MAX_FUTURE:
        raise EventInvalid("eventTime", f"{raw[:40]} is in the future")
    return when


def _node(item: dict, path: str, place: str, spec: spec_module.Spec, cap: int | None, memo: bool = False) -> DatasetRef:
    namespace = _name(item["namespace"], path, "namespace")
    name = _name(item["name"], path, "name")
    facets = item.get("facets")
    if facets:
        facets = _facets(facets, f"{path}.facets", place, spec, cap, memo)
    return DatasetRef(namespace=namespace, name=name, facets=facets or {})


def _dataset(item: dict, path: str, spec: spec_module.Spec, io_key: str, cap: int | None,
             memo: bool = False) -> DatasetRef:
    ref = _node(item, path, "facets:dataset", spec, cap, memo)
    ref.namespace, ref.name = normalise_dataset(ref.namespace, ref.name)
    if "columnLineage" in ref.facets:
        _column_sources(ref.facets["columnLineage"], f"{path}.facets.columnLineage")
    if io_key and item.get(io_key):
        ref.io_facets = _facets(item[io_key], f"{path}.{io_key}", io_key, spec, cap, memo)
    return ref


def _column_sources(lineage, path: str) -> None:
    """Each inputField of a columnLineage facet names a dataset (the store creates it when no input
    names it): its namespace and name obey the rules of every other name. The facet's schema was
    checked before (both are strings); what a producer sends beyond it is left to the schema."""
    fields = lineage.get("fields") if isinstance(lineage, dict) else None
    if not isinstance(fields, dict):
        return
    for field_name, spec in fields.items():
        sources = spec.get("inputFields") if isinstance(spec, dict) else None
        if not isinstance(sources, list):
            continue
        for index, source in enumerate(sources):
            if not isinstance(source, dict):
                continue
            for key in ("namespace", "name"):
                value = source.get(key)
                if isinstance(value, str):
                    _name(value, f"{path}.fields.{field_name}.inputFields[{index}]", key)


def _name(value: str, parent: str, key: str) -> str:
    """A namespace or name; the path is made only for a refusal (this runs seven times per event)."""
    if not value.strip():
        raise EventInvalid(f"{parent}.{key}", "must not be empty")
    # isprintable() is False for every control character (and for some other characters, which the
    # regex then lets through): one C call instead of a regex search for the common, printable name.
    if not value.isprintable() and _CONTROL.search(value):
        raise EventInvalid(f"{parent}.{key}", "control characters are not allowed")
    if len(value) > MAX_NAME:
        raise EventInvalid(f"{parent}.{key}", f"{len(value):,} characters; at most {MAX_NAME:,}")
    return value


def _facets(facets: dict, path: str, place: str, spec: spec_module.Spec, cap: int | None,
            memo: bool = False) -> dict:
    """Standard facets are checked against their own schema; each facet's size is capped at `cap`
    bytes (None: the whole event is within the cap, so no facet needs measuring). With `memo` (the body
    was parsed by orjson, so orjson writes each value back exactly) a facet found valid before, byte for
    byte, is not checked again (`spec.Checker.errors_memo`)."""
    for name, facet in facets.items():
        if cap is not None:
            size = len(json.dumps(facet, separators=(",", ":")))
            if size > cap:
                raise EventInvalid(f"{path}.{name}", f"{size:,} bytes; a facet may have at most {cap:,}")
        checker = spec.facets.get((place, name))
        if checker is not None:
            errors = checker.errors_memo({name: facet}) if memo else checker.errors({name: facet})
            if errors:
                error = errors[0]
                raise EventInvalid(f"{path}.{_path(error.absolute_path)}", error.message[:300])
    return facets


# -- credentials and naming ---------------------------------------------------------------------------


def strip_credentials(value: str) -> str:
    """`postgres://user:secret@host:5432` → `postgres://host:5432`; secret query parameters dropped."""
    return _SECRET_PARAM.sub(r"\1", _USERINFO.sub(r"\g<scheme>", value))


def normalise_dataset(namespace: str, name: str) -> tuple[str, str]:
    """OpenLineage's dataset naming: `scheme://authority` (lower-cased, no credentials, no trailing
    slash; postgresql → postgres, s3a/s3n → s3) and, for object stores, a name without a leading slash."""
    if "://" not in namespace:
        return namespace, name
    namespace, scheme = _namespace(namespace)
    if scheme in _OBJECT_STORES and name.startswith("/") and scheme != "file":
        name = name.lstrip("/") or name
    return namespace, name


@functools.lru_cache(maxsize=4096)  # a producer names a handful of namespaces thousands of times
def _namespace(namespace: str) -> tuple[str, str]:
    parts = urlparts.split(namespace)
    if parts is None:  # not readable as a URL (an unbalanced bracket in the host): kept as it was sent
        return namespace, ""
    scheme = _SCHEME_ALIASES.get(parts.scheme.lower(), parts.scheme.lower())
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 address keeps its brackets: [2001:db8::1]:5432 is not [2001:db8::1:5432]
        host = f"[{host}]"
    host += f":{parts.port}" if _port(parts) else ""
    if scheme in _CONTAINER_IN_USERINFO and parts.username and parts.password is None:
        host = f"{parts.username}@{host}"
    path = parts.path.rstrip("/")
    return urlunsplit((scheme, host, path, "", "")), scheme


def _port(parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None
