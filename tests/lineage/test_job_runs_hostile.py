"""Hostile input for a job's runs (`/lineage/jobs/<id>/runs/?page=…`, `GET /api/v1/lineage/runs`): every
example answers 200, 404 (no such job, or no such page), or 400 naming the parameter — never a 5xx — and
reading writes nothing (tests/hostile.py)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from portal.lineage.models import Node, Run
from tests import hostile
from tests.lineage.conftest import post, run_event
from tests.lineage.test_bad_input_properties import NODE_IDS, NUMBERS

pytestmark = pytest.mark.django_db
PG = "postgres://db:5432"


@pytest.fixture
def runs_api(api):
    assert post(api, [run_event("START", job=("etl", "j1"), outputs=[(PG, "t1")], when=f"2026-11-{day:02d}T10:00:00Z")
                      for day in range(1, 4)]).status_code == 201
    api.get("/api/v1/lineage/runs", {"nodeId": "job:etl:j1"})  # the token's first use is audited now
    return api


@pytest.fixture
def session(member):
    client = Client()
    client.force_login(member)
    return client


@hostile.budget(ci=30)
@given(node_id=st.one_of(NODE_IDS, st.just("job:etl:j1")), limit=NUMBERS, cursor=hostile.HOSTILE_STRINGS)
def test_any_api_parameters_get_runs_a_404_or_a_400_naming_them(runs_api, node_id, limit, cursor):
    before = hostile.digest(Node, Run)
    response = runs_api.get("/api/v1/lineage/runs", {"nodeId": node_id, "limit": limit, "cursor": cursor})
    hostile.assert_clear(response, names=["nodeId", "limit", "cursor"])
    assert response.status_code in (200, 400, 404), response.content[:500]
    assert hostile.digest(Node, Run) == before


@hostile.budget(ci=30)
@given(job_id=st.one_of(NUMBERS, st.just("job")), page=NUMBERS)
def test_any_page_parameters_get_runs_a_404_or_a_400_naming_them(runs_api, session, job_id, page):
    if job_id == "job":
        job_id = str(Node.objects.get(type="job").pk)
    if not job_id or "/" in job_id:
        return  # another URL
    response = session.get(f"/lineage/jobs/{quote(job_id, safe='')}/runs/", {"page": page})
    hostile.assert_clear(response, names=["page"])
    assert response.status_code in (200, 400, 404), response.content[:500]
