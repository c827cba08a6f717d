"""A NUL in a page's form field is refused before any view runs (portal.core.middleware.RejectNulMiddleware).

PostgreSQL text cannot hold NUL: a view that reads `request.POST` directly (the incident note) answered
500 there and stored the NUL on SQLite. Found by the form crawl (tests/site/test_forms.py)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from portal.incidents import demo as incidents_demo
from portal.incidents.models import Incident, TimelineEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def grace(demo_org) -> Client:
    incidents_demo.load()
    client = Client()
    client.force_login(demo_org["users"]["grace"])
    return client


def _refused(response, field: str) -> None:
    assert response.status_code == 400, response.status_code
    assert f"{field}: Null characters are not allowed." in response.content.decode()


def test_a_nul_in_a_form_field_is_a_400_naming_it_and_stores_nothing(grace):
    incident = Incident.objects.order_by("pk").first()
    url = f"/incidents/{incident.pk}/notes/"
    before = TimelineEntry.objects.count()
    _refused(grace.post(url, "text=first%00second", content_type="application/x-www-form-urlencoded"), "text")
    _refused(grace.post(url, {"text": "a\x00b"}), "text")  # multipart, as the test client sends a dict
    _refused(grace.post(url, {"te\x00xt": "fine"}), "te\\x00xt")
    assert TimelineEntry.objects.count() == before
    assert grace.post(url, {"text": "a note without one"}).status_code == 302
    assert TimelineEntry.objects.count() == before + 1


@pytest.mark.prod_smoke
def test_a_nul_in_a_form_field_is_a_400_on_postgresql(grace):
    if connection.vendor != "postgresql":
        pytest.skip("the production profile's run (DATABASE_URL on PostgreSQL)")
    test_a_nul_in_a_form_field_is_a_400_naming_it_and_stores_nothing(grace)
