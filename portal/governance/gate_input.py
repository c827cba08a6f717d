"""What the Rego gates read about a request: the target, its model card, the candidate and current
alias holder's metrics (from the MLflow run, as synced into the catalog), training datasets, features.

Built from the database only, so evaluating gates never waits on MLflow."""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
from pathlib import Path

from django.conf import settings

from catalog import uploads
from catalog.descriptors.errors import DescriptorError
from catalog.models import Entity, ModelVersion
from portal.accounts import permissions

from . import impact as impact_summary
from .models import AccessGrant, ApprovalRequest, RequestImpact

MAX_CARD_BYTES = 512 * 1024
HEADING = re.compile(r"^#{2}\s+(.+?)\s*#*\s*$", re.MULTILINE)
PII_CLASSES = {"pii", "restricted"}


def normalise_ref(value: str, kind: str) -> str:
    """'card-transactions-2025' or 'dataset:x' or 'dataset:default/x' → 'dataset:default/x'."""
    value = value.strip().lower()
    if ":" in value:
        kind, _, value = value.partition(":")
    if "/" not in value:
        value = f"default/{value}"
    return f"{kind}:{value}"


def model_card(entity: Entity) -> dict:
    """{"present", "path", "sections" (lowercase titles)}: from techdocs when it is installed, else read
    the file next to the descriptor (never outside the descriptor's folder)."""
    relative = entity.spec.get("modelCard")
    if not isinstance(relative, str) or not relative.strip():
        return {"present": False, "path": "", "sections": []}
    try:
        from portal.techdocs.selectors import model_card_facts
    except ImportError:
        model_card_facts = None
    if model_card_facts is not None:
        try:
            facts = model_card_facts(entity)
            keys = facts.get("section_keys") or []
            return {
                "present": bool(facts.get("present")),
                "path": relative,
                "sections": [k.replace("_", " ") for k in keys],
            }
        except Exception:  # noqa: S110 (fall back to reading the file ourselves)
            pass
    text = read_model_card(entity)
    if text is None:
        return {"present": False, "path": relative, "sections": []}
    sections = [re.sub(r"[^a-z0-9]+", " ", h.lower()).strip() for h in HEADING.findall(text)]
    return {"present": True, "path": relative, "sections": sections}


def read_model_card(entity: Entity) -> str | None:
    relative = entity.spec.get("modelCard")
    if (
        not isinstance(relative, str)
        or not entity.source
        or entity.source == "mlflow"
        or entity.source.startswith(("http://", "https://"))
    ):
        return None
    try:
        folder = Path(uploads.file_path(entity.source)).resolve().parent
    except DescriptorError:
        return None
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder) or not path.is_file() or os.path.getsize(path) > MAX_CARD_BYTES:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


# A metric the gates may compare: finite and within what the policy engine reads exactly. MLflow keeps an
# infinite metric as the largest float, which would pass any minimum; regopy reads a whole number beyond
# 64 bits as another number. Such a metric is left out, so the gate finds it "missing" and fails.
METRIC_LIMIT = 2.0**53


def _comparable(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and abs(value) < METRIC_LIMIT


def version_facts(row: ModelVersion | None) -> dict | None:
    if row is None:
        return None
    return {
        "version": row.version,
        "metrics": {k: v for k, v in (row.metrics or {}).items() if _comparable(v)},
        "aliases": row.aliases or [],
        "run_id": row.run_id,
    }


def alias_holder(entity: Entity, alias: str) -> ModelVersion | None:
    for row in ModelVersion.objects.filter(entity=entity).only("version", "aliases", "metrics", "run_id"):
        if alias in (row.aliases or []):
            return row
    return None


def build(request: ApprovalRequest, *, impact: RequestImpact | None = None) -> dict:
    """The gates' input. `impact`: the downstream snapshot of a deprecate/retire request (its summary,
    from the requester's point of view, is `input.impact`)."""
    entity = request.entity
    payload: dict = {
        "action": request.action,
        "params": request.params,
        "target": _target(request, entity),
        "model_card": {"present": False, "path": "", "sections": []},
        "candidate": None,
        "champion": None,
        "alias": request.params.get("alias"),
        "datasets": [],
        "features": [],
    }
    if impact_summary.applies(request):
        payload["impact"] = impact_summary.gate_summary(impact, request.requester)
    if entity is None:
        return payload
    if entity.kind_key == "model":
        payload["model_card"] = model_card(entity)
    if request.action == "promote-model-version":
        payload["candidate"], payload["champion"] = _candidate_and_champion(request, entity)
    spec = entity.spec
    datasets = {normalise_ref(v, "dataset") for v in spec.get("trainedOn") or [] if isinstance(v, str)}
    features = {normalise_ref(v, "featureset") for v in spec.get("consumesFeatures") or [] if isinstance(v, str)}
    found = {e.ref: e for e in Entity.objects.filter(ref__in=datasets | features)}
    payload["datasets"] = _named_for_every_reader(_datasets(entity, datasets, found), found, "training dataset")
    payload["features"] = _named_for_every_reader([_feature_set(ref, found.get(ref)) for ref in sorted(features)],
                                                  found, "feature set")
    return payload


def _named_for_every_reader(rows: list[dict], found: dict[str, Entity], noun: str) -> list[dict]:
    """Everyone who may read the request reads its gates' messages. A dataset or feature set that not
    every signed-in user may see, or that is not in the catalog, is therefore named alike, by a number
    ("training dataset #2 (private, or not in the catalog)"): a private one reads exactly like a missing
    one, and its facts (classified pii, deprecated) are not tied to its name. Those come after the named
    ones, in an order that does not follow their names (a keyed hash), since the names are in the model's
    descriptor for all to read. The facts the policies decide on are unchanged."""
    named, unnamed = [], []
    for row in rows:
        entity = found.get(row["ref"])
        (named if entity is not None and entity.visibility == permissions.Visibility.INTERNAL else unnamed).append(row)
    key = settings.SECRET_KEY.encode()
    unnamed.sort(key=lambda r: hmac.new(key, r["ref"].encode(), hashlib.sha256).hexdigest())
    for number, row in enumerate(unnamed, 1):
        row["ref"] = f"{noun} #{number} (private, or not in the catalog)"
    return named + unnamed


def _target(request: ApprovalRequest, entity: Entity | None) -> dict:
    spec = entity.spec if entity else {}
    tier = request.risk_tier if request.risk_tier in (1, 2, 3) else None
    return {
        "ref": request.target_ref,
        "kind": entity.kind if entity else "",
        "owner": spec.get("owner", "") or "",
        "owner_team": entity.owner_team.name if entity and entity.owner_team_id else None,
        "risk_tier": tier,
        "tier_key": str(tier or 1),
        "lifecycle": entity.lifecycle if entity else "",
    }


def _candidate_and_champion(request: ApprovalRequest, entity: Entity) -> tuple[dict | None, dict | None]:
    """The version to promote and the one the alias points at now (None: the same one, or none)."""
    candidate = ModelVersion.objects.filter(entity=entity, version=str(request.params.get("version"))).first()
    holder = alias_holder(entity, str(request.params.get("alias", "")))
    champion = holder if holder is not None and candidate is not None and holder.pk != candidate.pk else None
    return version_facts(candidate), version_facts(champion)


def _datasets(entity: Entity, refs: set[str], found: dict[str, Entity]) -> list[dict]:
    """The training datasets: whether each holds personal data and whether the model's team may use it
    (an access grant, or the dataset's own approval annotation)."""
    granted = set(
        AccessGrant.objects.filter(team_id=entity.owner_team_id, target_ref__in=refs).values_list("target_ref", flat=True)
    ) if entity.owner_team_id else set()
    rows = []
    for ref in sorted(refs):
        dataset = found.get(ref)
        classification = (dataset.spec.get("classification") or "") if dataset else ""
        schema = dataset.spec.get("schema") if dataset else None
        has_pii_column = any(isinstance(c, dict) and c.get("pii") for c in schema or [])
        pii = classification in PII_CLASSES or has_pii_column or (dataset is not None and "pii" in dataset.tags)
        approved = ref in granted or (
            dataset is not None and dataset.annotations.get("plinth.dev/pii-use-approved", "").lower() == "true"
        )
        rows.append({"ref": ref, "exists": dataset is not None, "classification": classification, "pii": pii,
                     "pii_use_approved": approved})
    return rows


def _feature_set(ref: str, fs: Entity | None) -> dict:
    deprecated = fs is not None and (
        fs.lifecycle == "deprecated"
        or "deprecated" in fs.tags
        or fs.annotations.get("plinth.dev/deprecated", "").lower() == "true"
    )
    return {"ref": ref, "exists": fs is not None, "deprecated": deprecated}
