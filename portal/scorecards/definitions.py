"""Scorecard definitions: versioned YAML files (one per scorecard) in PLINTH_SCORECARDS_DIR.

A scorecard names the entities it applies to (`filter`: kinds, types, tags, lifecycle), its ordered
levels (default Bronze, Silver, Gold) and its checks. A check is a Rego rule file (`rule`, under
`checks/`, package `plinth.checks.<file stem>`, defining `pass(facts)`) fed only the facts it `reads`,
or `manual: true` (set by an owner with a justification and an expiry). A file that cannot be used
still yields a Scorecard with `error` set: it is listed and shown with its error, no entity reaches a
level on it (its whom-it-applies-to is unknown, so it evaluates nobody and its earlier results are
dropped), and it never breaks the pages or the evaluation of the others. A check whose rule does not
compile or returns nothing for an entity fails (closed) for that entity, with the reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from portal.governance.workflows import UniqueKeyLoader, WorkflowError

from . import conf

NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
CHECK_ID = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
READ = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")  # a fact, or one field of it: `incidents.open_sev1`
RULE_FILE = re.compile(r"^[a-z][a-z0-9_]{0,62}\.rego$")
DEFAULT_LEVELS = ["Bronze", "Silver", "Gold"]
# The facts a check may read (docs/operations.md, "Facts"). slo, incidents and cost are always null
# until those parts of Plinth exist: a check that needs them fails ("no SLO defined").
FACT_KEYS = frozenset({
    "kind", "type", "lifecycle", "tags", "owner", "descriptor", "risk_tier", "techdocs", "model_card",
    "mlflow", "lineage", "approval", "scaffolder", "slo", "incidents", "cost",
})
FILTER_KEYS = {"kinds", "types", "tags", "lifecycle"}


class DefinitionError(ValueError):
    """A definition that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    level: str
    rule: str = ""  # file name under checks/; "" for a manual check
    reads: tuple[str, ...] = ()
    message: str = ""  # shown when it fails
    fix: str = ""  # how to make it pass
    manual: bool = False
    deadline: date | None = None  # a campaign: owners of failing entities are notified once

    @property
    def package(self) -> str:
        return f"plinth.checks.{self.rule.removesuffix('.rego')}"


@dataclass
class Scorecard:
    name: str
    path: Path
    title: str = ""
    version: int = 1
    description: str = ""
    filter: dict[str, list[str]] = field(default_factory=dict)
    levels: list[str] = field(default_factory=lambda: list(DEFAULT_LEVELS))
    checks: list[Check] = field(default_factory=list)
    hash: str = ""
    error: str = ""

    def applies(self, kind_key: str, spec_type: str, tags: list[str], lifecycle: str) -> bool:
        f = self.filter
        if f.get("kinds") and kind_key not in f["kinds"]:
            return False
        if f.get("types") and spec_type.lower() not in f["types"]:
            return False
        if f.get("lifecycle") and lifecycle.lower() not in f["lifecycle"]:
            return False
        return not (f.get("tags") and not set(f["tags"]) & set(tags or []))

    def level_rank(self, level: str) -> int:
        return self.levels.index(level) + 1

    def check(self, check_id: str) -> Check | None:
        return next((c for c in self.checks if c.id == check_id), None)

    @property
    def campaigns(self) -> list[Check]:
        return [c for c in self.checks if c.deadline]


def _strings(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DefinitionError(f"{where} must be a list of names")
    return [v.lower() for v in value]


def _check(raw: Any, i: int, levels: list[str], where: str, folder: Path) -> Check:
    at = f"{where}: checks[{i}]"
    if not isinstance(raw, dict):
        raise DefinitionError(f"{at} must be a mapping")
    unknown = set(raw) - {"id", "title", "level", "rule", "reads", "message", "fix", "manual", "deadline"}
    if unknown:
        raise DefinitionError(f"{at}: unknown field {sorted(unknown)[0]!r}")
    check_id = raw.get("id")
    if not isinstance(check_id, str) or not CHECK_ID.match(check_id):
        raise DefinitionError(f"{at}.id must be lowercase letters, digits and dashes")
    level = raw.get("level", levels[0])
    if level not in levels:
        raise DefinitionError(f"{at}.level {level!r} is not one of the levels {levels}")
    manual = raw.get("manual", False)
    if not isinstance(manual, bool):
        raise DefinitionError(f"{at}.manual must be true or false")
    rule = raw.get("rule", "")
    if manual and rule:
        raise DefinitionError(f"{at}: a manual check has no rule")
    if not manual and (not isinstance(rule, str) or not RULE_FILE.match(rule)):
        raise DefinitionError(f"{at}.rule must name a .rego file under checks/ (lowercase, e.g. owner_set.rego)")
    reads = _strings(raw.get("reads"), f"{at}.reads")
    if not manual and not reads:
        raise DefinitionError(f"{at}.reads must list the facts the rule reads")
    bad = [r for r in reads if r.partition(".")[0] not in FACT_KEYS or not READ.match(r)]
    if bad:
        raise DefinitionError(f"{at}.reads: unknown fact {bad[0]!r} (known: {', '.join(sorted(FACT_KEYS))})")
    deadline = raw.get("deadline")
    if deadline is not None and not isinstance(deadline, date):
        try:
            deadline = date.fromisoformat(str(deadline))
        except ValueError as exc:
            raise DefinitionError(f"{at}.deadline {deadline!r} is not a date (YYYY-MM-DD)") from exc
    return Check(
        id=check_id, title=str(raw.get("title") or check_id), level=level, rule=rule or "",
        reads=tuple(sorted(set(reads))), message=str(raw.get("message") or f"{check_id} fails"),
        fix=str(raw.get("fix") or ""), manual=manual, deadline=deadline,
    )


def parse(path: Path, text: str) -> Scorecard:
    """One definition file; raises DefinitionError naming the file and field."""
    where = path.name
    try:
        raw = yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise DefinitionError(f"{where}: not valid YAML: {' '.join(str(exc).split())[:300]}") from exc
    except WorkflowError as exc:
        raise DefinitionError(f"{where}: {exc}") from exc
    if not isinstance(raw, dict):
        raise DefinitionError(f"{where}: a scorecard is a mapping with name, levels and checks")
    unknown = set(raw) - {"name", "title", "version", "description", "filter", "levels", "checks"}
    if unknown:
        raise DefinitionError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise DefinitionError(f"{where}: name must be lowercase letters, digits and dashes")
    version = raw.get("version", 1)
    if not isinstance(version, int) or version < 1:
        raise DefinitionError(f"{where}: version must be a positive integer")
    flt = raw.get("filter") or {}
    if not isinstance(flt, dict) or set(flt) - FILTER_KEYS:
        raise DefinitionError(f"{where}: filter takes only {', '.join(sorted(FILTER_KEYS))}")
    filters = {key: _strings(flt.get(key), f"{where}: filter.{key}") for key in FILTER_KEYS}
    levels = raw.get("levels", DEFAULT_LEVELS)
    if (not isinstance(levels, list) or not levels or not all(isinstance(v, str) and v.strip() for v in levels)
            or len(set(levels)) != len(levels)):
        raise DefinitionError(f"{where}: levels must be a list of distinct names, lowest first")
    raw_checks = raw.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        raise DefinitionError(f"{where}: checks must list at least one check")
    checks = [_check(c, i, levels, where, path.parent) for i, c in enumerate(raw_checks)]
    seen: set[str] = set()
    for c in checks:
        if c.id in seen:
            raise DefinitionError(f"{where}: two checks have the id {c.id!r}")
        seen.add(c.id)
    return Scorecard(
        name=name, path=path, title=str(raw.get("title") or name), version=version,
        description=str(raw.get("description") or ""), filter=filters, levels=list(levels), checks=checks,
    )


def folder() -> Path:
    return Path(conf.get("DIR"))


_cache: dict[str, list[Scorecard]] = {}


def load_all() -> list[Scorecard]:
    """Every definition of the folder, in name order; broken ones with `error` set. Parsed again only
    when a file of the folder changed (each page and batch asks)."""
    paths = sorted(folder().glob("*.yaml"))
    stamp = "|".join(f"{p.name}:{p.stat().st_mtime_ns}:{p.stat().st_size}" for p in paths if p.is_file())
    key = f"{folder()}|{stamp}"
    found = _cache.get(key)
    if found is None:
        found = _load(paths)
        _cache.clear()
        _cache[key] = found
    return found


def _load(paths: list[Path]) -> list[Scorecard]:
    out: dict[str, Scorecard] = {}
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            card = Scorecard(name=path.stem, path=path, title=path.stem, error=f"{path.name}: unreadable ({exc})")
        else:
            try:
                card = parse(path, text)
            except DefinitionError as exc:
                card = Scorecard(name=path.stem, path=path, title=path.stem, error=str(exc))
            card.hash = hashlib.sha256(text.encode()).hexdigest()
        if card.name in out:
            card = Scorecard(name=path.stem, path=path, title=path.stem,
                             error=f"{path.name}: the name {card.name!r} is already used by {out[card.name].path.name}")
        out[card.name] = card
    return list(out.values())


def get(name: str) -> Scorecard | None:
    return next((c for c in load_all() if c.name == name), None)
