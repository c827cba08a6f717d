"""The runs panel of an entity page says what it leaves out: "Showing the last 10 of M runs", M counting
only the runs of jobs the reader may see, with where to look next, in a constant number of queries
(review finding, session 36: it showed the last ten and said nothing of the others). Where to look next
is each job's runs page (tests/lineage/test_job_runs.py)."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.lineage.models import Node
from portal.lineage.selectors import PANEL_RUNS
from tests.lineage.conftest import post, run_event
from tests.lineage.test_review_s33 import PG, _panel, _session, private_writer  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db


def _runs(api, count: int, job: str = "public_loader") -> None:
    """`count` more runs of a public job writing the dataset, each with its own day."""
    for day in range(count):
        when = f"2026-10-{day % 28 + 1:02d}T{day // 28:02d}:00:00Z"
        response = post(api, run_event("COMPLETE", job=("airflow", job), outputs=[(PG, "shared.scores")], when=when))
        assert response.status_code == 201, response.content


def _count_line(panel: str) -> str:
    found = re.search(r'data-testid="lineage-runs-count">(.*?)</p>', panel, re.S)
    assert found, panel
    return " ".join(found.group(1).split())


def test_a_full_panel_says_how_many_runs_there_are_counting_only_those_the_reader_may_see(
        api, member, private_writer):  # noqa: F811
    """dora sees the public job's 12 runs (never the private job's one); the owning team sees 13."""
    _runs(api, 11)
    line = _count_line(_panel(_session(member), private_writer["dataset"]))
    assert line.startswith(f"Showing the last {PANEL_RUNS} of 12 runs, newest first."), line
    assert "Older runs are on the job's runs page (below)" in line, line
    job = Node.objects.get(type="job", name="public_loader")
    panel = _panel(_session(member), private_writer["dataset"])
    assert f'<a href="/lineage/jobs/{job.pk}/runs/">All runs of this job</a>' in panel, panel
    assert 'href="/lineage/?nodeId=dataset%3Apostgres%3A%2F%2Fdb%3A5432%3Ashared.scores"' in line, line
    insider = _count_line(_panel(_session(private_writer["insider"]), private_writer["dataset"]))
    assert insider.startswith(f"Showing the last {PANEL_RUNS} of 13 runs"), insider


def test_a_panel_showing_every_run_says_so(member, private_writer):  # noqa: F811
    line = _count_line(_panel(_session(member), private_writer["dataset"]))
    assert line.startswith("Showing 1 run, newest first."), line
    assert "Older runs" not in line
    insider = _count_line(_panel(_session(private_writer["insider"]), private_writer["dataset"]))
    assert insider.startswith("Showing all 2 runs, newest first."), insider


def test_the_count_costs_the_same_queries_whatever_the_number_of_runs_and_jobs(api, member, private_writer):  # noqa: F811
    client = _session(member)
    url = private_writer["dataset"].get_absolute_url()

    def count() -> int:
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        return len(captured)

    _runs(api, PANEL_RUNS)  # a full panel: the count is asked
    full = count()
    _runs(api, 15)
    _runs(api, 3, job="another_loader")
    assert count() == full
    assert "of 29 runs" in _count_line(_panel(client, private_writer["dataset"]))
