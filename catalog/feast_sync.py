"""Feast feature repositories as catalog locations: `feast:/path/to/repo` (the folder holding
`feature_store.yaml`). The repository's registry is read with the `feast` SDK (its protobuf classes and
`FeatureView/Entity/FeatureService.from_proto`) and every feature view becomes a FeatureSet descriptor,
validated and stored by the same Reader/plan/apply path as a descriptor file — so a refresh updates,
a feature view removed by `feast apply` is removed (or orphaned) like any entity that left its
location, and a registry that cannot be read is a location error while the last good entities stay.

Reading writes nothing. The one database read: which Dataset entities carry the OpenLineage name of
each feature view's batch source (`openlineage.io/dataset`), for the `consumesDataset` relations.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import yaml
from django.conf import settings

from portal.core.numbers import digits

from . import experiments
from .descriptors.errors import DescriptorError
from .models import Entity

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
    keys = {(v.namespace, v.dataset_name) for v in views if v.namespace}
    by_pk, _ = experiments.dataset_matches(keys, set())
    refs = dict(Entity.objects.filter(pk__in=set(by_pk.values())).values_list("pk", "ref")) if by_pk else {}
    by_key = {key: refs[pk] for key, pk in by_pk.items() if pk in refs}
    digest = hashlib.sha256(raw)
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for view in views:
        dataset = by_key.get((view.namespace, view.dataset_name))
        out.descriptors.append(view.descriptor(dataset))
    # The resolved datasets count: a Dataset registered later changes the digest, so the next refresh
    # adds the relation even though the registry did not change.
    digest.update(json.dumps(sorted(map(str, by_key.items()))).encode())
    out.digest = digest.hexdigest()
    return out


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
            entity = Entity.from_proto(proto)
            entities[entity.name] = entity
    services: dict[str, list[str]] = {}
    for proto in registry.feature_services:
        if proto.spec.project == project:
            service = FeatureService.from_proto(proto)
            for projection in service.feature_view_projections:
                services.setdefault(projection.name, []).append(service.name)
    views = []
    for proto in registry.feature_views:
        if proto.spec.project != project:
            continue
        try:
            view = FeatureView.from_proto(proto)
        except Exception as exc:  # the SDK's own check of a view it cannot rebuild: name it, read the others
            out.errors.append(_fail(f"Feature view '{proto.spec.name[:100]}' cannot be read by the feast SDK: "
                                    f"{str(exc)[:200]}", out.source))
            continue
        try:
            views.append(_view(view, project, entities, services, online_type, offline_type, repo))
        except DescriptorError as exc:  # this view is left out (its entity kept, flagged); the others go on
            exc.source = out.source
            out.errors.append(exc)
    return views


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
    return _View(project=project, name=view.name, data=data, namespace=namespace, dataset_name=name)


def _tag(key: str, value: str) -> str | None:
    """A Feast tag worth a catalog tag (`pii`, `tier:gold`), when it fits the catalog's tag rules."""
    import re

    text = (str(key) if str(value).lower() in {"", "true", "yes"} else f"{key}:{value}").lower()
    text = re.sub(r"[^a-z0-9:+#]+", "-", text).strip("-")[:63]
    if not text or str(key) in OWNER_TAGS or str(key) == "lifecycle":
        return None
    return text


# -- freshness on the entity page -----------------------------------------------------------------

def freshness(spec: dict, now: datetime | None = None) -> dict | None:
    """{materialized_at, age, ttl, stale} for a FeatureSet synced from Feast; None for others."""
    facts = spec.get("feast") if isinstance(spec, dict) else None
    if not isinstance(facts, dict):
        return None
    now = now or datetime.now(UTC)
    last = facts.get("lastMaterialized")
    at = _parse(last)
    ttl = spec.get("ttl")
    ttl_seconds = int(str(ttl).rstrip("s")) if isinstance(ttl, str) and digits(ttl.rstrip("s")) else 0
    age = (now - at) if at else None
    return {
        "materialized_at": at, "age": age, "ttl_seconds": ttl_seconds, "ttl": duration_text(ttl_seconds),
        "materializations": [(_parse(m.get("start")), _parse(m.get("end")))
                             for m in facts.get("materializations") or [] if isinstance(m, dict)],
        "stale": bool(at is None or (ttl_seconds and age and age.total_seconds() > ttl_seconds)),
        "facts": facts,
    }


def _parse(value) -> datetime | None:
    """An ISO time as Feast's registry or a hand-written descriptor gives it; one without an offset is
    read as UTC (it was subtracted from an aware time: a TypeError and a 500 on the entity page)."""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        return None
    return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at


def duration_text(seconds: int) -> str:
    """`86400` → `1 day`, `5400` → `1 h 30 min`; empty for 0."""
    if seconds <= 0:
        return ""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}" if days else "", f"{hours} h" if hours else "",
             f"{minutes} min" if minutes else "", f"{secs} s" if secs else ""]
    return " ".join(p for p in parts if p)
