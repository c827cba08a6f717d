"""Lineage tests read the OpenLineage spec and producer events from ../shared (never copied here)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from portal.accounts import services as account_services
from portal.accounts.models import Role
from tests.factories import MembershipFactory, TeamFactory, UserFactory

SPEC = Path(settings.PLINTH_OPENLINEAGE_SPEC_DIR)
COMPAT = SPEC.parent


@pytest.fixture(autouse=True)
def _spec():
    if not (SPEC / "OpenLineage.json").is_file():
        pytest.skip(f"OpenLineage spec not found at {SPEC} (../shared/compat/openlineage/spec, or "
                    "PLINTH_OPENLINEAGE_SPEC_DIR)")


@pytest.fixture
def compat() -> Path:
    return COMPAT


@pytest.fixture
def team(db):
    return TeamFactory(name="data-eng")


@pytest.fixture
def member(team):
    user = UserFactory(username="dora")
    MembershipFactory(user=user, team=team, role=Role.MEMBER)
    return user


def bearer(user) -> Client:
    _, raw = account_services.token_create(user=user, name="lineage tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


@pytest.fixture
def api(member) -> Client:
    return bearer(member)


def post(client: Client, body) -> object:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/v1/lineage", data=data, content_type="application/json")


def run_event(event_type="START", *, run_id=None, when="2026-11-30T10:00:00Z", job=("airflow", "etl.orders"),
              inputs=(), outputs=(), run_facets=None, job_facets=None) -> dict:
    return {
        "eventType": event_type, "eventTime": when,
        "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(run_id or uuid.uuid4()), "facets": run_facets or {}},
        "job": {"namespace": job[0], "name": job[1], "facets": job_facets or {}},
        "inputs": [{"namespace": d[0], "name": d[1]} if isinstance(d, tuple) else d for d in inputs],
        "outputs": [{"namespace": d[0], "name": d[1]} if isinstance(d, tuple) else d for d in outputs],
    }


def facet(**fields) -> dict:
    return {"_producer": "https://example.org/producer", "_schemaURL": "https://example.org/schema.json", **fields}
