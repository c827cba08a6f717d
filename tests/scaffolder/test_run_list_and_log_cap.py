"""The run list pages through every run the user may see ("N–M of T", next/previous) in a constant number
of queries; a run log cut at MAX_LOG_LINES says so, on the page and in the API."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.scaffolder.models import Run, RunLog

from .conftest import register_template, start, unique

pytestmark = pytest.mark.django_db

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %s, title: Listed}
spec:
  owner: fraud-ml
  type: test
  parameters: []
  steps:
    - {id: log, name: Log, action: debug:log, input: {message: hi}}
"""


def copies(run: Run, n: int, **fields) -> None:
    """n more runs like `run` (bulk: the list only reads rows)."""
    template = {f.attname: getattr(run, f.attname) for f in Run._meta.concrete_fields if f.name not in ("id", "uid")}
    Run.objects.bulk_create([Run(**{**template, **fields}) for _ in range(n)])


def count_line(body: str) -> str:
    found = re.search(r'data-testid="run-count">([^<]*)<', body)
    return found.group(1) if found else ""


def test_the_run_list_pages_through_every_run_with_constant_queries(client, org, scaffolder_root, tmp_path):
    alice, dan = org["users"]["alice"], org["users"]["dan"]
    entity = register_template(tmp_path, TEMPLATE % unique("list"))
    first = start(alice, entity.name, {}, entity=entity)
    copies(first, 129)  # alice: 130 runs
    copies(first, 7, created_by_id=dan.pk, owner_team_id=None)  # dan's own: never counted for alice
    client.force_login(alice)

    def page(number: int) -> tuple[str, int]:
        client.get("/create/runs/")  # warm the session and caches: count the list's own queries only
        with CaptureQueriesContext(connection) as seen:
            body = client.get(f"/create/runs/?page={number}").content.decode()
        return body, len(seen)

    one, queries_one = page(1)
    assert count_line(one) == "Runs 1–50 of 130"
    assert 'rel="next" href="?&amp;page=2"' in one and 'rel="prev"' not in one
    assert one.count('class="badge run-queued"') == 50
    two, queries_two = page(2)
    assert count_line(two) == "Runs 51–100 of 130" and 'rel="prev"' in two and 'rel="next"' in two
    three, queries_three = page(3)
    assert count_line(three) == "Runs 101–130 of 130" and 'rel="next"' not in three
    assert three.count('class="badge run-queued"') == 30
    assert queries_one == queries_two == queries_three, (queries_one, queries_two, queries_three)
    # Past the end, or not a number: a page that exists, never an error.
    assert count_line(client.get("/create/runs/?page=99").content.decode()) == "Runs 101–130 of 130"
    assert count_line(client.get("/create/runs/?page=x").content.decode()) == "Runs 1–50 of 130"
    client.force_login(dan)
    assert count_line(client.get("/create/runs/").content.decode()) == "7 runs"


def test_a_cut_log_says_so_on_the_page_and_in_the_api(client, org, scaffolder_root, tmp_path, settings):
    settings.PLINTH_SCAFFOLDER_MAX_LOG_LINES = 2000
    alice = org["users"]["alice"]
    entity = register_template(tmp_path, TEMPLATE % unique("log"))
    run = start(alice, entity.name, {}, entity=entity)
    RunLog.objects.bulk_create([RunLog(run=run, message=f"line {i}") for i in range(2500)])
    client.force_login(alice)
    page = client.get(run.get_absolute_url()).content.decode()
    assert "Log truncated: showing the first 2,000 of 2,500 lines." in page
    assert "line 1999" in page and "line 2000" not in page
    fragment = client.get(run.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert "Log truncated: showing the first 2,000 of 2,500 lines." in fragment
    body = client.get(f"/api/v1/scaffolder/runs/{run.uid}").json()
    assert len(body["log"]) == 2000 and body["logTotal"] == 2500 and body["logTruncated"] is True


def test_a_whole_log_says_nothing_of_truncation(client, org, scaffolder_root, tmp_path, settings):
    settings.PLINTH_SCAFFOLDER_MAX_LOG_LINES = 3
    alice = org["users"]["alice"]
    entity = register_template(tmp_path, TEMPLATE % unique("log"))
    run = start(alice, entity.name, {}, entity=entity)
    RunLog.objects.bulk_create([RunLog(run=run, message=f"line {i}") for i in range(3)])
    client.force_login(alice)
    assert "Log truncated" not in client.get(run.get_absolute_url()).content.decode()
    body = client.get(f"/api/v1/scaffolder/runs/{run.uid}").json()
    assert len(body["log"]) == 3 and body["logTotal"] == 3 and body["logTruncated"] is False
    RunLog.objects.create(run=run, message="one more")
    body = client.get(f"/api/v1/scaffolder/runs/{run.uid}").json()
    assert len(body["log"]) == 3 and body["logTotal"] == 4 and body["logTruncated"] is True
    assert "showing the first 3 of 4 lines" in client.get(run.get_absolute_url()).content.decode()
