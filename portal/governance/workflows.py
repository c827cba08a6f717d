"""Workflow definitions: versioned YAML files (one per request type), overridable per risk tier.

A definition names its gates (with block/warn enforcement), an SLA (reminder, escalation, expiry) and
ordered stages, each with reviewer teams and a quorum. `resolve()` returns the definition that applies
to one request; it is frozen into the request at submission so later edits never change a running one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from . import conf

DURATION = re.compile(r"^(\d+)\s*([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ENFORCEMENTS = {"block", "warn"}


class WorkflowError(ValueError):
    """A workflow file that cannot be used; the message names the file and the field."""


def parse_duration(value: Any, where: str) -> int:
    """'24h' → seconds. Plain integers are seconds."""
    if isinstance(value, int) and value > 0:
        return value
    match = DURATION.match(str(value).strip())
    if not match or int(match.group(1)) <= 0:
        raise WorkflowError(f"{where}: {value!r} is not a duration such as 30m, 24h or 7d")
    return int(match.group(1)) * UNITS[match.group(2)]


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (PyYAML keeps the last one silently)."""


def _construct_mapping(loader, node, deep=False):
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise WorkflowError(f"line {key_node.start_mark.line + 1}: duplicate key {key!r}")
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Other apps' versioned YAML (scorecards) is read the same way; a duplicate key raises WorkflowError.
UniqueKeyLoader = _UniqueKeyLoader


@dataclass(frozen=True)
class Workflow:
    name: str
    version: int
    action: str
    path: Path
    raw: dict

    def resolve(self, risk_tier: int | None) -> dict:
        """The definition for one request: tier overrides replace `sla`, `stages` and `gates`."""
        base = {k: v for k, v in self.raw.items() if k != "tiers"}
        override = (self.raw.get("tiers") or {}).get(str(risk_tier)) if risk_tier is not None else None
        if override:
            base.update(override)
        sla = base.get("sla") or {}
        where = f"{self.path.name}"
        gates = base.get("gates") or {}
        enforcement_override = conf.get("GATE_ENFORCEMENT") or {}
        resolved_gates = {}
        for gate, enforcement in gates.items():
            enforcement = enforcement_override.get(gate, enforcement)
            if enforcement not in ENFORCEMENTS:
                raise WorkflowError(f"{where}: gates.{gate} must be block or warn, not {enforcement!r}")
            resolved_gates[gate] = enforcement
        stages = []
        for i, stage in enumerate(base.get("stages") or []):
            teams = stage.get("teams") or []
            quorum = stage.get("quorum", 1)
            if not teams or not isinstance(teams, list):
                raise WorkflowError(f"{where}: stages[{i}].teams must list at least one team")
            if not isinstance(quorum, int) or quorum < 1:
                raise WorkflowError(f"{where}: stages[{i}].quorum must be a positive integer")
            stages.append(
                {
                    "name": str(stage.get("name") or f"Stage {i + 1}"),
                    "teams": [str(t) for t in teams],
                    "quorum": quorum,
                }
            )
        if not stages:
            raise WorkflowError(f"{where}: a workflow needs at least one stage")
        return {
            "name": self.name,
            "version": self.version,
            "risk_tier": risk_tier,
            "gates": resolved_gates,
            "stages": stages,
            "sla": {
                "remind_after": parse_duration(sla.get("remind_after", "24h"), f"{where}: sla.remind_after"),
                "escalate_after": parse_duration(
                    sla.get("escalate_after", "48h"), f"{where}: sla.escalate_after"
                ),
                "expire_after": parse_duration(sla.get("expire_after", "7d"), f"{where}: sla.expire_after"),
            },
        }


def load(path: Path) -> Workflow:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        raise WorkflowError(f"{path.name}: not valid YAML: {exc}") from exc
    except WorkflowError as exc:
        raise WorkflowError(f"{path.name}: {exc}") from exc
    if not isinstance(raw, dict) or not raw.get("name") or not raw.get("action"):
        raise WorkflowError(f"{path.name}: a workflow needs `name` and `action`")
    return Workflow(
        name=str(raw["name"]),
        version=int(raw.get("version", 1)),
        action=str(raw["action"]),
        path=path,
        raw=raw,
    )


def for_action(action: str) -> Workflow:
    folder = Path(conf.get("WORKFLOW_DIR"))
    for path in sorted(folder.glob("*.yaml")):
        workflow = load(path)
        if workflow.action == action:
            return workflow
    raise WorkflowError(f"no workflow defines the action {action!r}")


def sla_deltas(resolved: dict) -> tuple[timedelta, timedelta, timedelta]:
    sla = resolved["sla"]
    return (
        timedelta(seconds=sla["remind_after"]),
        timedelta(seconds=sla["escalate_after"]),
        timedelta(seconds=sla["expire_after"]),
    )
