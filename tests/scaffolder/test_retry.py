"""Retrying a failed run: the same run again, steps that published kept and never repeated; who may
retry; what cannot be retried. And a run ends once, whoever tries to end it again."""

from pathlib import Path

import pytest

from portal.core.models import AuditEvent
from portal.scaffolder import services
from portal.scaffolder.models import Run, RunStatus

from .conftest import published_git, register_template, run_inline, start, unique

pytestmark = pytest.mark.django_db

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(name)s, title: Retry}
spec:
  owner: fraud-ml
  type: test
  parameters: []
  steps:
    - {id: fetch, name: Fetch, action: fetch:template, input: {url: ./skeleton, values: {name: %(name)s}}}
    - {id: publish, name: Publish, action: publish:git, input: {owner: retry, repo: %(name)s}}
    - {id: later, name: Later, action: fetch:plain, input: {url: ./later, targetPath: later}}
"""


@pytest.fixture
def failed_run(org, scaffolder_root, tmp_path):
    """A run that published its repository, then failed (its `later` folder does not exist yet)."""
    name = unique("retry")
    entity = register_template(tmp_path, TEMPLATE % {"name": name}, {"skeleton/README.md": "hello\n"})
    run = run_inline(start(org["users"]["alice"], entity.name, {}, entity=entity))
    assert run.status == RunStatus.FAILED and "later" in run.error
    return run, Path(entity.source).parent, name


def commits(name: str) -> list[str]:
    return published_git("retry", name, "rev-list", "--all").split()


def test_retry_runs_the_same_run_again_without_publishing_twice(client, org, failed_run):
    run, folder, name = failed_run
    first = commits(name)
    assert len(first) == 1
    (folder / "later").mkdir()
    (folder / "later" / "notes.txt").write_text("now here\n")
    client.force_login(org["users"]["alice"])
    response = client.post(f"/api/v1/scaffolder/runs/{run.uid}/retry")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    steps = {s.step_id: s.status for s in run.steps.all()}
    assert steps == {"fetch": "pending", "publish": "done", "later": "pending"}
    run = run_inline(Run.objects.get(pk=run.pk))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert commits(name) == first, "the repository was published again"
    assert run.logs.filter(message__contains="published in an earlier attempt; not repeated").exists()
    target = f"run:{run.uid}"
    assert [e.action for e in AuditEvent.objects.filter(target=target).order_by("seq")] == [
        "scaffolder.run.create", "scaffolder.run.failed", "scaffolder.run.retry", "scaffolder.run.succeeded"
    ]


def test_only_a_failed_run_is_retried_and_only_by_its_people(client, org, failed_run):
    run, _, _ = failed_run
    heidi, dan = org["users"]["heidi"], org["users"]["dan"]
    Run.objects.filter(pk=run.pk).update(owner_team=org["teams"]["fraud-ml"])
    client.force_login(dan)  # another team: the run does not exist for him
    assert client.post(f"/api/v1/scaffolder/runs/{run.uid}/retry").status_code == 404
    client.force_login(heidi)  # a viewer of the run's team sees it, may not retry it
    assert 'data-testid="run-retry"' not in client.get(run.get_absolute_url()).content.decode()
    assert client.post(f"/api/v1/scaffolder/runs/{run.uid}/retry").status_code == 403
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED
    client.force_login(org["users"]["alice"])
    assert 'data-testid="run-retry"' in client.get(run.get_absolute_url()).content.decode()
    assert client.post(f"/create/runs/{run.uid}/retry/").status_code == 302
    again = client.post(f"/api/v1/scaffolder/runs/{run.uid}/retry")
    assert again.status_code == 409 and "only a failed run" in again.json()["error"]["message"].lower()
    assert again.json()["error"]["state"] == "queued"


def test_a_run_that_used_secrets_cannot_be_retried(client, org, failed_run):
    run, _, _ = failed_run
    Run.objects.filter(pk=run.pk).update(secret_names=["token"])  # its secrets file went with the end
    client.force_login(org["users"]["alice"])
    response = client.post(f"/api/v1/scaffolder/runs/{run.uid}/retry")
    assert response.status_code == 409 and "secrets" in response.json()["error"]["message"]


def test_a_run_is_finished_once(failed_run):
    """The reaper failing a run whose slow worker then finishes it: the first end stands, one event."""
    run, _, _ = failed_run
    again = services.run_finish(run, ok=True)
    assert again.status == RunStatus.FAILED
    assert AuditEvent.objects.filter(target=f"run:{run.uid}", action__startswith="scaffolder.run.s").count() == 0
