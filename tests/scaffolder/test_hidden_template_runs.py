"""A run made for your team from a template you may not see (another team's private one, run by someone
in both teams) is your team's run — its steps and log show — but the template is never named: not on the
run page, the runs list, the Create page's recent runs, the download or the API, and "Start again" (a 404
for you) is not offered (review finding: erin saw fraud-ml's "Project Nightjar onboarding")."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from portal.scaffolder.models import Run

from .conftest import register_template, run_inline, start, unique

pytestmark = pytest.mark.django_db
TITLE = "Project Nightjar onboarding"
TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: %(name)s
  title: Project Nightjar onboarding
  annotations: {plinth.dev/visibility: private}
spec:
  owner: fraud-ml
  type: service
  parameters:
    - required: [owner]
      properties:
        owner: {type: string, ui:field: OwnerPicker}
  steps:
    - {id: log, name: Ping the team bucket, action: debug:log, input: {message: hello from the run}}
    - {id: bad, action: fs:rename, input: {files: [{from: missing, to: x}]}}
"""


@pytest.fixture
def hidden_run(org, scaffolder_root, tmp_path):
    """frank (reviewer in fraud-ml, admin in risk-governance) runs fraud-ml's private template for
    risk-governance; it fails at its second step."""
    entity = register_template(tmp_path, TEMPLATE % {"name": unique("nj")}, user=org["users"]["alice"])
    run = run_inline(start(org["users"]["frank"], entity.name, {"owner": "risk-governance"}, entity=entity))
    assert run.status == "failed"
    return entity, run


def client_for(org, name: str) -> Client:
    client = Client()
    client.force_login(org["users"][name])
    return client


def test_the_run_page_does_not_name_a_template_the_viewer_may_not_see(org, hidden_run):
    entity, run = hidden_run
    erin = client_for(org, "erin")
    assert erin.get(f"/create/templates/default/{entity.name}/").status_code == 404
    page = erin.get(run.get_absolute_url()).content.decode()
    assert TITLE not in page and entity.name not in page
    assert "Run of a template you may not see" in page
    assert "from-run=" not in page  # Start again would be a 404 for her
    assert 'data-testid="run-restart"' not in page
    # The run is her team's: what it did is hers to read, without the template's name in its log.
    assert "Ping the team bucket" in page and "hello from the run" in page
    assert "Run started." in page
    poll = erin.get(run.get_absolute_url(), HTTP_HX_REQUEST="true").content.decode()
    assert TITLE not in poll and entity.name not in poll and "from-run=" not in poll


def test_lists_do_not_name_it(org, hidden_run):
    entity, run = hidden_run
    Run.objects.filter(pk=run.pk).update(created_by=org["users"]["erin"])  # her own run: in recent runs too
    erin = client_for(org, "erin")
    for url in ("/create/runs/", "/create/"):
        page = erin.get(url).content.decode()
        assert run.get_absolute_url() in page, url
        assert TITLE not in page and entity.name not in page, url
        assert "A template you may not see" in page, url


def test_the_api_answers_null_and_says_the_template_is_hidden(org, hidden_run):
    entity, run = hidden_run
    body = client_for(org, "erin").get(f"/api/v1/scaffolder/runs/{run.uid}").json()
    assert body["template"] is None and body["templateHidden"] is True
    assert entity.name not in str(body) and TITLE not in str(body)
    assert [s["name"] for s in body["steps"]][0] == "Ping the team bucket"
    assert body["log"][0]["message"] == "Run started."


def test_the_stored_log_does_not_name_the_template(org, hidden_run):
    """What the executor stores is read later by whoever may see the run, maybe after its template was made
    private: its own lines never name the template (they are blanked when shown, but must not be held)."""
    entity, run = hidden_run
    stored = [*run.logs.values_list("message", flat=True), *run.steps.values_list("message", flat=True), run.error]
    assert stored[0] == "Run started."
    for text in stored:
        assert TITLE not in text and entity.name not in text and entity.ref not in text, text


def test_whoever_may_see_the_template_still_gets_it_named(org, hidden_run):
    entity, run = hidden_run
    frank = client_for(org, "frank")
    page = frank.get(run.get_absolute_url()).content.decode()
    assert TITLE in page
    restart = re.search(r'href="([^"]*from-run=[^"]*)"', page).group(1).replace("&amp;", "&")
    assert frank.get(restart).status_code == 200
    assert TITLE in frank.get("/create/runs/").content.decode()
    body = frank.get(f"/api/v1/scaffolder/runs/{run.uid}").json()
    assert body["template"] == entity.ref and body["templateHidden"] is False


def test_the_runs_list_asks_the_same_queries_for_more_runs(org, hidden_run, django_assert_max_num_queries):
    """Whether each run's template may be shown is one subquery of the list's query, not one per run."""
    entity, run = hidden_run
    erin = client_for(org, "erin")
    erin.get("/create/runs/")  # warm: session, user
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        erin.get("/create/runs/")
    for _ in range(3):
        run_inline(start(org["users"]["frank"], entity.name, {"owner": "risk-governance"}, entity=entity))
    with django_assert_max_num_queries(len(one.captured_queries)):
        page = erin.get("/create/runs/").content.decode()
    assert page.count("A template you may not see") == 4



def test_feedback_posted_directly_on_the_run_is_refused_as_for_a_missing_run(org, hidden_run):
    """The run page offers erin no "was this useful" form; posting one to the API anyway is answered as for
    a missing run, and nothing holding the template's title or owner is stored."""
    import json

    from portal.feedback.models import FeedbackItem

    entity, run = hidden_run
    erin = client_for(org, "erin")
    answers = []
    for target in (str(run.uid), "00000000-0000-0000-0000-000000000000"):
        response = erin.post("/api/v1/feedback", json.dumps({"kind": "template", "target": target, "useful": False,
                                                             "comment": "slow"}), content_type="application/json")
        assert response.status_code == 404, response.content
        assert TITLE not in response.content.decode() and entity.name not in response.content.decode()
        answers.append(response.json()["error"])
    assert answers[0] == answers[1]
    assert not FeedbackItem.objects.filter(run=run).exists()
