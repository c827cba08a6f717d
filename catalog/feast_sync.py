"""Feast feature repositories as catalog locations: `feast:/path/to/repo` (the folder holding
`feature_store.yaml`). The repository's registry is read with the `feast` SDK (its protobuf classes and
`FeatureView/Entity/FeatureService.from_proto`) and every feature view becomes a FeatureSet descriptor,
validated and stored by the same Reader/plan/apply path as a descriptor file — so a refresh updates,
a feature view removed by `feast apply` is removed (or orphaned) like any entity that left its
location, and a registry that cannot be read is a location error while the last good entities stay.

Reading writes nothing. The database reads: which Dataset entities carry the OpenLineage name of each
feature view's batch source (`openlineage.io/dataset`), for the `consumesDataset` relations, and the
owner teams of the views (a view names only a dataset its owner team may see).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import yaml
from django.conf import settings

from portal.accounts import permissions

from . import experiments
from .descriptors.errors import DescriptorError

PREFIX = "feast:"
REPO_CONFIG = "feature_store.yaml"
OWNER_TAGS = ("team", "owner")  # Feast tags that name the owning Plinth team, in this order
DEFAULT_MAX_REGISTRY_BYTES = 64 * 1024 * 1024
_CONFIG_MAX_BYTES = 256 * 1024


def is_target(target: str) -> bool:
    return target.strip().lower().startswith(PREFIX)


def repo_path(target: str) -> str:
    return target.strip()[len(PREFIX):]


def max_registry_bytes() -> int:
    return int(getattr(settings, "PLINTH_FEAST_MAX_REGISTRY_BYTES", DEFAULT_MAX_REGISTRY_BYTES))


@dataclass
class RepoRead:
    """What one read of a repository produced: descriptors (dicts) and a digest of what they came from."""

    source: str  # the registry file: entities name it as their source
    digest: str = ""
    descriptors: list[dict] = field(default_factory=list)
    errors: list[DescriptorError] = field(default_factory=list)


def _fail(message: str, source: str, field_name: str = "") -> DescriptorError:
    return DescriptorError(message, source=source, field=field_name)


def repo_config(repo: str) -> dict:
    """feature_store.yaml as a mapping, or DescriptorError naming what is wrong."""
    config_path = os.path.join(repo, REPO_CONFIG)
    if not os.path.isfile(config_path):
        raise _fail(f"Not a Feast feature repository: no {REPO_CONFIG} in this folder.", repo, "target")
    if os.path.getsize(config_path) > _CONFIG_MAX_BYTES:
        raise _fail(f"{REPO_CONFIG} is over {_CONFIG_MAX_BYTES} bytes.", config_path)
    try:
        with open(config_path, "rb") as fh:
            config = yaml.safe_load(fh.read())
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise _fail(f"{REPO_CONFIG} cannot be read: {str(exc).splitlines()[0][:200]}", config_path) from None
    if not isinstance(config, dict) or not isinstance(config.get("project"), str):
        raise _fail(f"{REPO_CONFIG} has no `project`: not a Feast repository configuration.", config_path,
                    "project")
    return config


def registry_path(repo: str, config: dict) -> str:
    """The local registry file the configuration names (relative to the repository), inside it."""
    registry = config.get("registry", "data/registry.db")
    if isinstance(registry, dict):
        kind = str(registry.get("registry_type", "file"))
        if kind != "file":
            raise _fail(f"Registry type '{kind}' is not read by Plinth: only file registries are.",
                        os.path.join(repo, REPO_CONFIG), "registry.registry_type")
        registry = registry.get("path")
    if not isinstance(registry, str) or not registry.strip():
        raise _fail("`registry` names no file.", os.path.join(repo, REPO_CONFIG), "registry")
    if "\0" in registry:
        raise _fail("`registry` holds a NUL character: not a file path.", os.path.join(repo, REPO_CONFIG),
                    "registry")
    if "://" in registry:
        raise _fail(f"Registry '{registry[:200]}' is remote: only local file registries are read.",
                    os.path.join(repo, REPO_CONFIG), "registry")
    real = os.path.realpath(os.path.join(repo, registry))
    if not real.startswith(os.path.realpath(repo).rstrip(os.sep) + os.sep):
        raise _fail("The registry path leaves the feature repository's folder.", os.path.join(repo, REPO_CONFIG),
                    "registry")
    return real


# feast.metrics, imported with feast's modules, sets PROMETHEUS_MULTIPROC_DIR (and the older
# PROMETHEUS_MULTIPROCESS_DIR) for the whole process when they are unset: the portal's /metrics would
# then read an empty multi-process folder instead of its own counters. Imports of feast go through
# here, which puts both variables back as they were.
_PROMETHEUS_VARS = ("PROMETHEUS_MULTIPROC_DIR", "PROMETHEUS_MULTIPROCESS_DIR")


@contextlib.contextmanager
def _feast_imports():
    before = {name: os.environ.get(name) for name in _PROMETHEUS_VARS}
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def load_registry(path: str):
    """The registry protobuf (feast.protos…Registry), or DescriptorError: missing, too large, corrupt, or
    a protobuf that is not a Feast registry."""
    try:
        with _feast_imports():
            from feast.protos.feast.core.Registry_pb2 import Registry
            from google.protobuf.message import DecodeError
    except ImportError:
        raise _fail("The feast package is not installed on this server (pip install 'plinth[feast]').",
                    path) from None
    if not os.path.isfile(path):
        raise _fail("The Feast registry file does not exist (run `feast apply` in the repository).", path)
    size = os.path.getsize(path)
    if size > max_registry_bytes():
        raise _fail(f"The Feast registry is {size} bytes, over the {max_registry_bytes()}-byte cap.", path)
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        registry = Registry.FromString(raw)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise _fail(f"This file is not a Feast registry (protobuf decoding failed: {str(exc)[:200]}).",
                    path) from None
    # Protobuf decodes many byte strings without complaint; `feast apply` always writes these two.
    if not registry.version_id or not registry.HasField("last_updated"):
        raise _fail("This file is not a Feast registry (no version id or last-updated time).", path)
    return registry, raw


def read(target: str) -> RepoRead:
    """Read a repository into FeatureSet descriptors. Errors name the file and the problem."""
    repo = repo_path(target)
    out = RepoRead(source=os.path.join(repo, REPO_CONFIG))
    try:
        config = repo_config(repo)
        out.source = registry_path(repo, config)
        registry, raw = load_registry(out.source)
        views = _views(registry, config, out, repo)
    except DescriptorError as exc:
        out.errors.append(exc)
        return out
    claims = experiments.dataset_claims({(v.namespace, v.dataset_name) for v in views if v.namespace})
    teams = _owner_teams({v.owner for v in views}) if claims else {}
    digest = hashlib.sha256(raw)
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    linked = []
    for view in views:
        dataset = _linkable(claims.get((view.namespace, view.dataset_name), []), teams.get(view.owner))
        linked.append((view.name, dataset))
        out.descriptors.append(view.descriptor(dataset))
    # The resolved datasets count: a Dataset registered later (or made internal) changes the digest, so
    # the next refresh adds the relation even though the registry did not change.
    digest.update(json.dumps(sorted(map(str, linked))).encode())
    out.digest = digest.hexdigest()
    return out


def _owner_teams(owners: set[str]) -> dict[str, int]:
    """Owner ref (as a view's `team` tag gives it) -> the id of the Plinth team it names (one query)."""
    from portal.accounts.models import Team

    from .descriptors.refs import parse_ref

    names = {}  # owner as written -> team name (`fraud-ml`, `group:default/Fraud-ML`: one team)
    for owner in owners:
        with contextlib.suppress(ValueError):
            key = parse_ref(owner, default_kind="group").key()
            if key.startswith("group:default/"):
                names[owner] = key.removeprefix("group:default/")
    ids = dict(Team.objects.filter(name__in=set(names.values())).values_list("name", "pk"))
    return {owner: ids[name] for owner, name in names.items() if name in ids}


def _linkable(claims: list[experiments.DatasetClaim], team_id: int | None) -> str | None:
    """The first Dataset a feature view may name as its input (the rule:
    `permissions.may_link_feast_dataset`). Without one, the view has no input, exactly as when no
    Dataset carries the name."""
    for claim in claims:
        if permissions.may_link_feast_dataset(claim, team_id):
            return claim.ref
    return None


def check(target: str) -> None:
    """Raise DescriptorError when a new registration could never be read (no repository, no registry,
    not a registry): nothing is stored then."""
    repo = repo_path(target)
    config = repo_config(repo)
    load_registry(registry_path(repo, config))


# -- one feature view ------------------------------------------------------------------------------

@dataclass
class _View:
    project: str
    name: str
    data: dict  # the descriptor without inputs
    namespace: str = ""
    dataset_name: str = ""
    owner: str = ""
    errors: list = field(default_factory=list)

    def descriptor(self, dataset_ref: str | None) -> dict:
        data = json.loads(json.dumps(self.data))
        if dataset_ref:
            data["spec"]["inputs"] = [dataset_ref]
        return data


def _iso(value) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ttl_text(ttl: timedelta | None) -> str:
    """Feast's TTL in the descriptor's duration form; 0 (or none) means features never expire."""
    seconds = int(ttl.total_seconds()) if ttl else 0
    return f"{seconds}s" if seconds > 0 else "0"


def _source(source, project: str, repo: str) -> tuple[dict, str, str]:
    """The batch source as stored, and its OpenLineage (namespace, name). A relative file path is
    relative to the repository, as Feast reads it."""
    if source is None:
        return {}, "", ""
    kind = type(source).__name__
    path = getattr(source, "path", None) if kind == "FileSource" else None
    if path and "://" not in path and not path.startswith("/"):
        path = os.path.normpath(os.path.join(repo, path))
    table = getattr(source, "table", None) or getattr(source, "table_ref", None)
    if path:
        namespace, name = experiments.openlineage_name("", experiments.source_uri(json.dumps({"uri": path})), path)
    else:
        namespace, name = f"feast://{project}", str(table or source.name)
    body = {"type": kind, "name": source.name, "namespace": namespace, "datasetName": name,
            "timestampField": source.timestamp_field or ""}
    if path:
        body["path"] = experiments.source_uri(json.dumps({"uri": path}))
    if table:
        body["table"] = str(table)
    return body, namespace, name


def _owner(tags: dict, name: str) -> str | None:
    for key in OWNER_TAGS:
        value = str(tags.get(key) or "").strip()
        if value and "@" not in value:
            return value if ":" in value or "/" in value else f"group:default/{value}"
    return None


def _views(registry, config: dict, out: RepoRead, repo: str) -> list[_View]:
    with _feast_imports():
        from feast.entity import Entity
        from feast.feature_service import FeatureService
        from feast.feature_view import FeatureView

    project = config["project"]
    online_store = config.get("online_store") or {}
    online_type = online_store.get("type", "sqlite") if isinstance(online_store, dict) else str(online_store)
    offline_store = config.get("offline_store") or {}
    offline_type = offline_store.get("type", "dask") if isinstance(offline_store, dict) else str(offline_store)
    entities = {}
    for proto in registry.entities:
        if proto.spec.project == project:
            entity = _from_proto(Entity, proto, "Entity", out)
            if entity is not None:  # views naming it keep its name as their join key
                entities[entity.name] = entity
    services: dict[str, list[str]] = {}
    for proto in registry.feature_services:
        if proto.spec.project == project:
            service = _from_proto(FeatureService, proto, "Feature service", out)
            for projection in service.feature_view_projections if service is not None else []:
                services.setdefault(projection.name, []).append(service.name)
    views = []
    for proto in registry.feature_views:
        if proto.spec.project != project:
            continue
        view = _from_proto(FeatureView, proto, "Feature view", out)
        if view is None:
            continue
        try:
            views.append(_view(view, project, entities, services, online_type, offline_type, repo))
        except DescriptorError as exc:  # this view is left out (its entity kept, flagged); the others go on
            exc.source = out.source
            out.errors.append(exc)
    return views


def _from_proto(cls, proto, what: str, out: RepoRead):
    """`cls.from_proto(proto)`, or None with an error naming the object: the SDK's own check of one it
    cannot rebuild (an unknown value type, a malformed field) leaves that one out and the others read."""
    try:
        return cls.from_proto(proto)
    except Exception as exc:  # any SDK failure on untrusted registry bytes is this one object's error
        out.errors.append(_fail(f"{what} '{proto.spec.name[:100]}' cannot be read by the feast SDK: "
                                f"{str(exc)[:200]}", out.source))
        return None


def _view(view, project: str, entities: dict, services: dict, online_type: str, offline_type: str,
          repo: str) -> _View:
    tags = dict(view.tags or {})
    source, namespace, name = _source(view.batch_source, project, repo)
    owner = _owner(tags, view.name)
    if owner is None:
        raise DescriptorError(
            f"Feature view '{view.name}' has no `team` tag naming its owner team (tags: team=<Plinth team>).",
            field="tags.team")
    columns = {c.name: str(c.dtype) for c in view.entity_columns}
    entity_rows = []
    for entity_name in view.entities:
        if entity_name == "__dummy":  # Feast's stand-in for entity-less views
            continue
        entity = entities.get(entity_name)
        join_key = entity.join_key if entity is not None else entity_name
        row = {"name": entity_name, "joinKeys": [join_key]}
        if columns.get(join_key) or (entity is not None and entity.value_type.name != "UNKNOWN"):
            row["valueType"] = columns.get(join_key) or entity.value_type.name
        if entity is not None and entity.description:
            row["description"] = entity.description[:2000]
        entity_rows.append(row)
    features = [{"name": f.name, "type": str(f.dtype), **({"description": f.description[:2000]}
                                                          if f.description else {})} for f in view.features]
    intervals = [(_iso(start), _iso(end)) for start, end in view.materialization_intervals]
    annotations = {"feast.dev/project": project, "feast.dev/feature-view": view.name}
    if namespace:
        annotations["feast.dev/source-dataset"] = f"{namespace}/{name}"
    # Feature services as catalog tags too: the catalog list filters a service's feature sets by its tag.
    service_tags = [_tag("feast-service", s) for s in sorted(services.get(view.name, []))]
    plinth_tags = (["feast"] + [t for t in service_tags if t][:10]
                   + [t for t in (_tag(k, v) for k, v in sorted(tags.items())) if t][:20])
    feast_facts = {
        "project": project, "featureView": view.name,
        "onlineStore": online_type, "offlineStore": offline_type,
        "featureServices": sorted(services.get(view.name, [])),
        "lastMaterialized": intervals[-1][1] if intervals else None,
        "materializations": [{"start": s, "end": e} for s, e in intervals[-10:]],
        "tags": {str(k)[:100]: str(v)[:500] for k, v in tags.items()},
    }
    if view.owner:
        feast_facts["ownerContact"] = view.owner[:200]
    data = {
        "apiVersion": "plinth.dev/v1alpha1", "kind": "FeatureSet",
        "metadata": {"name": view.name, "namespace": "default", "title": f"{project}/{view.name}",
                     "description": (view.description or "")[:2000], "annotations": annotations,
                     "tags": plinth_tags},
        "spec": {"type": "feast-feature-view", "lifecycle": str(tags.get("lifecycle") or "production"),
                 "owner": owner, "entities": entity_rows, "features": features, "ttl": ttl_text(view.ttl),
                 "source": source or view.name, "online": bool(view.online), "offline": bool(view.offline),
                 "feast": feast_facts},
    }
    return _View(project=project, name=view.name, data=data, namespace=namespace, dataset_name=name, owner=owner)


def _tag(key: str, value: str) -> str | None:
    """A Feast tag worth a catalog tag (`pii`, `tier:gold`), when it fits the catalog's tag rules."""
    text = (str(key) if str(value).lower() in {"", "true", "yes"} else f"{key}:{value}").lower()
    text = re.sub(r"[^a-z0-9:+#]+", "-", text).strip("-")[:63]
    if not text or str(key) in OWNER_TAGS or str(key) == "lifecycle":
        return None
    return text


# -- freshness on the entity page -----------------------------------------------------------------

def freshness(spec: dict, now: datetime | None = None) -> dict | None:
    """{materialized_at, age, ttl_seconds, ttl, stale, materializations, facts} for a FeatureSet with
    Feast facts; None for others. `spec.feast` is a free object in a hand-written descriptor: a value of
    another type than the sync writes is left out (the card shows less), never a 500. `ttl_seconds` is
    None for a TTL that is no duration, and freshness is then unknown (`stale` False)."""
    facts = spec.get("feast") if isinstance(spec, dict) else None
    if not isinstance(facts, dict):
        return None
    now = now or datetime.now(UTC)
    at = _parse(facts.get("lastMaterialized"))
    ttl_seconds = ttl_to_seconds(spec.get("ttl"))
    age = (now - at) if at else None
    materializations = facts.get("materializations")
    return {
        "materialized_at": at, "age": age, "ttl_seconds": ttl_seconds,
        "ttl": duration_text(ttl_seconds) if ttl_seconds is not None else "",
        "materializations": [(_parse(m.get("start")), _parse(m.get("end")))
                             for m in (materializations if isinstance(materializations, list) else [])[-10:]
                             if isinstance(m, dict)],
        "stale": bool(at is None or (ttl_seconds and age and age.total_seconds() > ttl_seconds)),
        "facts": _shown_facts(facts),
    }


def _shown_facts(facts: dict) -> dict:
    """The facts the page shows, each as the sync writes it (text; a list of texts for the services)."""
    shown = {key: str(facts[key])[:500] for key in ("project", "featureView", "onlineStore", "offlineStore",
                                                     "ownerContact") if isinstance(facts.get(key), str | int | float)}
    services = facts.get("featureServices")
    shown["featureServices"] = [str(s)[:200] for s in services[:50] if isinstance(s, str)] \
        if isinstance(services, list) else []
    return shown


# The duration forms FeatureSet.schema.json allows for `spec.ttl`: a whole number of seconds, "0", or
# number+unit parts ("86400s", "1d", "1h30m", "500ms").
_TTL_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_TTL_FORM = re.compile(r"(?:[0-9]+(?:ms|s|m|h|d|w))+")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# Longer than any age a materialization time can have (years 2–9998): such a TTL never runs out. Numbers
# are cut before int() reads them: Python refuses to convert more than 4300 digits (a 500 on the page).
TTL_NEVER_RUNS_OUT = 10**12
_TTL_MAX_DIGITS = 13


def ttl_to_seconds(ttl) -> float | None:
    """Seconds of a FeatureSet's `spec.ttl` (0 when absent or 0: features never expire), `inf` past
    TTL_NEVER_RUNS_OUT, or None when it is no duration of the schema's forms."""
    if ttl is None:
        return 0
    if isinstance(ttl, bool):
        return None
    if isinstance(ttl, int | float):
        return None if not ttl >= 0 else (float("inf") if ttl > TTL_NEVER_RUNS_OUT else ttl)
    if not isinstance(ttl, str):
        return None
    text = ttl.strip()
    if text == "0":
        return 0
    if not _TTL_FORM.fullmatch(text):
        return None
    total: float = 0
    for number, unit in _TTL_PART.findall(text):
        number = number.lstrip("0") or "0"
        if len(number) > _TTL_MAX_DIGITS:
            return float("inf")
        total += int(number) * _UNIT_SECONDS[unit]
    return float("inf") if total > TTL_NEVER_RUNS_OUT else total


# Times outside these are not shown: converting one near year 1 or 9999 to another zone overflows
# (the page's `when` and `date` filters answered 500).
_EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
_LATEST = datetime(9998, 12, 31, tzinfo=UTC)


def _parse(value) -> datetime | None:
    """An ISO time as Feast's registry or a hand-written descriptor gives it, in UTC; one without an
    offset is read as UTC (it was subtracted from an aware time: a TypeError and a 500 on the entity
    page). None for no time, or one too near the calendar's ends to show."""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
        if at is None:
            return None
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return at if _EARLIEST <= at <= _LATEST else None


def duration_text(seconds: float) -> str:
    """`86400` → `1 day`, `5400` → `1 h 30 min`, `0.5` → `0.5 s`; empty for 0."""
    if seconds <= 0:
        return ""
    if seconds > TTL_NEVER_RUNS_OUT:
        return "over 30,000 years"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    fraction = round(seconds - whole, 3)
    parts = [f"{days} day{'s' if days != 1 else ''}" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes else "",
             f"{secs + fraction:g} s" if fraction else (f"{secs} s" if secs else "")]
    return " ".join(p for p in parts if p)
