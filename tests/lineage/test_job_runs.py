"""Every run of a lineage job, on a page (`/lineage/jobs/<id>/runs/`) and in the API
(`GET /api/v1/lineage/runs?nodeId=job:…`): newest first, paged, in a constant number of queries; a job the
reader may not see is the same 404 as a missing one; bad input is a 400/404 naming it, never a 500; the
entity page's runs panel links to it (review, session 36: "no page or API lists a job's runs")."""

from __future__ import annotations

import re
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from portal.lineage.models import Node, Run
from tests.factories import UserFactory
from tests.lineage.conftest import bearer, post, run_event
from tests.lineage.test_review_s33 import PG, _panel, _session, private_writer  # noqa: F401 (the fixture)

pytestmark = pytest.mark.django_db

PUBLIC = ("airflow", "public_loader")
PUBLIC_ID = "job:airflow:public_loader"
PRIVATE_ID = "job:airflow:secret_scoring_job"


def _batch(api, count: int, *, start_day: int = 1, job=PUBLIC) -> list[str]:
    """`count` runs of `job` in one batch of START events, one hour apart in September (before the
    fixture's runs of 2026-11-30); their run ids, oldest first."""
    ids, events = [], []
    for index in range(count):
        run_id = str(uuid.uuid4())
        hour = start_day * 24 + index
        when = f"2026-09-{hour // 24 + 1:02d}T{hour % 24:02d}:00:00Z"
        events.append(run_event("START", run_id=run_id, job=job, outputs=[(PG, "shared.scores")], when=when))
        ids.append(run_id)
    response = post(api, events)
    assert response.status_code == 201, response.content
    return ids


def _without_start(count: int) -> list[str]:
    """Runs with no recorded start (stored before the ingest took the first event's time as the start);
    their run ids, newest stored first."""
    job = _job()
    runs = [Run.objects.create(run_id=uuid.uuid4(), job=job, state="COMPLETE", state_time=timezone.now(),
                               ended_at=timezone.now()) for _ in range(count)]
    return [str(r.run_id) for r in reversed(runs)]


def _job(name: str = "public_loader") -> Node:
    return Node.objects.get(type="job", name=name)


def _url(job, page=None) -> str:
    pk = job.pk if isinstance(job, Node) else job
    return f"/lineage/jobs/{pk}/runs/" + (f"?page={page}" if page is not None else "")


def _normalised(response) -> str:
    """A page without what differs between any two requests (its CSRF token, nonces, the path's id)."""
    html = re.sub(r"jobs/\d+/", "jobs/ID/", response.content.decode())
    return re.sub(r'(FToken": "|nonce="|value="|request )[A-Za-z0-9+/=_-]{16,}', r"\1TOKEN", html)


def _count_line(html: str) -> str:
    found = re.search(r'data-testid="job-runs-count">(.*?)</p>', html, re.S)
    assert found, html
    return " ".join(found.group(1).split())


def _run_ids(html: str) -> list[str]:
    table = re.search(r'data-testid="job-runs">(.*?)</table>', html, re.S).group(1)
    return re.findall(r"<code>([0-9a-f-]{36})</code>", table)


# -- the page -----------------------------------------------------------------------------------------


def test_the_page_lists_every_run_newest_first_fifty_a_page(api, member, private_writer):  # noqa: F811
    ids = _batch(api, 118)  # + the fixture's run of 2026-11-30, the newest: 119
    fixture_run = str(Run.objects.get(job=_job(), started_at__gte="2026-11-01T00:00:00Z").run_id)
    client = _session(member)
    first = client.get(_url(_job())).content.decode()
    assert _count_line(first).startswith("Runs 1–50 of 119, newest first"), _count_line(first)
    assert _run_ids(first) == [fixture_run, *ids[::-1][:49]]
    assert 'rel="next"' in first and 'rel="prev"' not in first
    last = client.get(_url(_job(), 3)).content.decode()
    assert _count_line(last).startswith("Runs 101–119 of 119"), _count_line(last)
    assert _run_ids(last) == ids[::-1][99:]
    assert 'rel="prev"' in last and 'rel="next"' not in last


def test_the_page_costs_the_same_queries_whatever_the_page_and_the_number_of_runs(api, member, private_writer):  # noqa: F811
    client = _session(member)

    def count(page) -> int:
        client.get(_url(_job(), page))
        with CaptureQueriesContext(connection) as captured:
            assert client.get(_url(_job(), page)).status_code == 200
        return len(captured)

    _batch(api, 3)
    few = count(1)
    _batch(api, 140, start_day=5)
    assert count(1) == few
    assert count(2) == few
    assert count(3) == few


def test_a_job_the_reader_may_not_see_is_the_same_404_as_a_missing_one(member, private_writer):  # noqa: F811
    secret = _job("secret_scoring_job")
    dora = _session(member)
    hidden = dora.get(_url(secret))
    missing = dora.get(_url(987654))
    assert hidden.status_code == missing.status_code == 404
    assert _normalised(hidden) == _normalised(missing)
    assert b"secret_scoring_job" not in hidden.content
    assert dora.get(_url(secret, "abc")).status_code == 404, "the job is decided before the page"
    insider = _session(private_writer["insider"]).get(_url(secret)).content.decode()
    assert "secret_scoring_job" in insider and "KeyError" in insider
    admin = _session(UserFactory(username="root", is_superuser=True))
    assert admin.get(_url(secret)).status_code == 200


@pytest.mark.parametrize(("job_id", "page", "status"), [
    ("abc", None, 404), ("-1", None, 404), ("0", None, 404), ("99999999999999999999999", None, 404),
    ("１", None, 404), ("dataset", None, 404),
    ("job", "abc", 400), ("job", "-1", 400), ("job", "0", 400), ("job", "1.5", 400), ("job", "", 400),
    ("job", "99999999999999999999999", 400), ("job", "2", 404), ("job", "1", 200),
])
def test_bad_input_is_a_clear_400_or_404(member, private_writer, job_id, page, status):  # noqa: F811
    if job_id == "job":
        job_id = _job().pk
    elif job_id == "dataset":
        job_id = Node.objects.get(type="dataset").pk
    response = _session(member).get(_url(job_id, page))
    assert response.status_code == status, response.content[:500]
    if page is not None and status != 200:
        assert "page: " in response.content.decode()


# -- the API ------------------------------------------------------------------------------------------


def test_the_api_walks_every_run_with_its_cursor(api, private_writer):  # noqa: F811
    ids = _batch(api, 118)
    fixture_run = str(Run.objects.get(job=_job(), started_at__gte="2026-11-01T00:00:00Z").run_id)
    no_start = _without_start(2)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"nodeId": PUBLIC_ID, "limit": 50, **({"cursor": cursor} if cursor else {})}
        body = api.get("/api/v1/lineage/runs", params).json()
        assert body["totalItems"] == 121 and body["job"] == PUBLIC_ID
        seen += [item["runId"] for item in body["items"]]
        pages += 1
        cursor = body["pageInfo"]["nextCursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [fixture_run, *ids[::-1], *no_start], "newest first; runs without a start last"
    first = api.get("/api/v1/lineage/runs", {"nodeId": PUBLIC_ID, "limit": 1}).json()["items"][0]
    assert set(first) == {"runId", "state", "startedAt", "endedAt", "durationSeconds", "errorMessage", "parentRunId"}
    assert first["state"] == "COMPLETE" and first["startedAt"].startswith("2026-11-30T09:00:00")


def test_the_api_answers_the_same_404_for_a_hidden_job_and_a_missing_one(api, private_writer):  # noqa: F811
    hidden = api.get("/api/v1/lineage/runs", {"nodeId": PRIVATE_ID})
    missing = api.get("/api/v1/lineage/runs", {"nodeId": "job:airflow:no_such_job"})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json() == {"error": {"status": 404, "message": "No such node."}}
    insider = bearer(private_writer["insider"]).get("/api/v1/lineage/runs", {"nodeId": PRIVATE_ID}).json()
    assert [item["state"] for item in insider["items"]] == ["FAIL"] and "KeyError" in insider["items"][0]["errorMessage"]


@pytest.mark.parametrize(("params", "field"), [
    ({}, "nodeId"), ({"nodeId": "nonsense"}, "nodeId"), ({"nodeId": f"dataset:{PG}:shared.scores"}, "nodeId"),
    ({"nodeId": PUBLIC_ID, "limit": "abc"}, "limit"), ({"nodeId": PUBLIC_ID, "limit": "-1"}, "limit"),
    ({"nodeId": PUBLIC_ID, "limit": "100000"}, "limit"), ({"nodeId": PUBLIC_ID, "cursor": "garbage"}, "cursor"),
    ({"nodeId": PUBLIC_ID, "cursor": "eyJ0IjogIjAwMDEtMDEtMDFUMDA6MDA6MDArMDE6MDAiLCAiaWQiOiAxfQ"}, "cursor"),
    ({"nodeId": PUBLIC_ID, "cursor": "eyJ0IjogbnVsbCwgImlkIjogMTAwMDAwMDAwMDAwMDAwMDAwMDAwMDB9"}, "cursor"),
])
def test_bad_api_input_is_a_400_naming_the_parameter(api, private_writer, params, field):  # noqa: F811
    response = api.get("/api/v1/lineage/runs", params)
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["details"], response.json()


def test_the_api_costs_the_same_queries_whatever_the_number_of_runs(api, private_writer):  # noqa: F811
    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get("/api/v1/lineage/runs", {"nodeId": PUBLIC_ID, "limit": 20}).status_code == 200
        return len(captured)

    _batch(api, 3)
    count()
    few = count()
    _batch(api, 60, start_day=5)
    assert count() == few


# -- the panel links to it ----------------------------------------------------------------------------


def test_the_panel_links_each_visible_writing_jobs_runs_page(api, member, private_writer):  # noqa: F811
    _batch(api, 1, job=("airflow", "another_loader"))
    panel = _panel(_session(member), private_writer["dataset"])
    links = re.search(r'data-testid="lineage-runs-pages">(.*?)</p>', panel, re.S).group(1)
    assert f'href="{_url(_job())}"' in links and f'href="{_url(_job("another_loader"))}"' in links
    assert "secret_scoring_job" not in panel and _url(_job("secret_scoring_job")) not in panel
    insider = _panel(_session(private_writer["insider"]), private_writer["dataset"])
    assert _url(_job("secret_scoring_job")) in insider
