"""Governance settings with their defaults. Read at call time, never at import time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings

APP_DIR = Path(__file__).resolve().parent

DEFAULTS: dict[str, Any] = {
    # Where workflow definitions (YAML) and Rego policies live.
    "WORKFLOW_DIR": APP_DIR / "workflows",
    "POLICY_DIR": APP_DIR / "policies",
    # Per-gate enforcement override: {"training_data": "block"}; otherwise the workflow's value.
    "GATE_ENFORCEMENT": {},
    # Longest comment or justification accepted (characters).
    "MAX_COMMENT_CHARS": 4000,
    # Execution of an approved action: retries against MLflow with exponential backoff.
    "EXECUTION_MAX_RETRIES": 4,
    "EXECUTION_BACKOFF_SECONDS": 5,
    # A request left in "executing" longer than this (a worker died) is dispatched again by check_slas.
    "EXECUTION_LEASE_SECONDS": 120,
    # Outbox rows whose publish failed are retried by relay_outbox; rows are claimed for this long.
    "OUTBOX_BATCH": 500,
    "OUTBOX_CLAIM_SECONDS": 30,
    # A row published this long ago whose task has not finished is published again (its message was
    # lost), at most OUTBOX_MAX_DELIVERIES times in all. Longer than any task takes, retries included.
    "OUTBOX_REDELIVER_SECONDS": 900,
    "OUTBOX_MAX_DELIVERIES": 5,
    # Aliases a version gives up when it receives the key alias: the challenger that becomes champion no
    # longer challenges anyone. Frozen into each request's `change.drops` and shown before approval.
    "ALIAS_SUPERSEDES": {"champion": ["challenger"]},
    # The model-version tag that records the approving request.
    "MLFLOW_REQUEST_TAG": "plinth.approval_request",
    # Email notifications (in-app notifications are always written).
    "EMAIL_NOTIFICATIONS": True,
}


def get(name: str) -> Any:
    return getattr(settings, f"PLINTH_GOVERNANCE_{name}", DEFAULTS[name])
