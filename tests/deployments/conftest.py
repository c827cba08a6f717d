"""Deployment fixtures: the demo organisation with fraud-detector's versions 1-3 synced, and bearer-token
clients for its people."""

from __future__ import annotations

import pytest
from django.test import Client

from catalog.models import Entity, ModelVersion
from portal.accounts import services as account_services


@pytest.fixture
def detector(demo_org):
    entity = Entity.objects.get(ref="model:default/fraud-detector")
    for n in (1, 2, 3):
        ModelVersion.objects.update_or_create(entity=entity, version=str(n), defaults={
            "version_number": n, "aliases": [], "status": "READY", "run_id": f"run{n}"})
    return entity


@pytest.fixture
def chargeback(demo_org):
    """fraud-ml's private model, with one version."""
    entity = Entity.objects.get(ref="model:default/chargeback-predictor")
    ModelVersion.objects.update_or_create(entity=entity, version="1", defaults={"version_number": 1})
    return entity


@pytest.fixture
def api_as(demo_org):
    def make(username: str) -> Client:
        _, raw = account_services.token_create(user=demo_org["users"][username], name="cd pipeline")
        client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}", raise_request_exception=False)
        client.get("/api/v1/me")  # the token's first use is audited: not part of what a test counts
        return client

    return make


def event(**overrides) -> dict:
    body = {"model": "model:default/fraud-detector", "version": "3", "environment": "prod", "status": "live",
            "platform": "kserve", "endpoint": "https://fraud.prod.example.com/v1/predict"}
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
