"""The SDK's docs: generated pages match the code, the SDK is a catalog entity of the demo organisation
whose docs build, and the quickstarts' persona journeys run as documented (each ≤ 5 commands) — their
Python snippets and shell commands executed against the live server with a real Celery worker."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from plinth_sdk import Client

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "sdk" / "docs"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def sections(page: str) -> dict[str, list[tuple[str, str]]]:
    """`## Heading` → its fenced blocks [(language, text)]."""
    out: dict[str, list[tuple[str, str]]] = {}
    for part in re.split(r"^## ", (DOCS / page).read_text(), flags=re.M)[1:]:
        title, _, body = part.partition("\n")
        out[title.strip()] = FENCE.findall(body)
    return out


def journey(page: str, title: str) -> dict[str, list[str]]:
    blocks: dict[str, list[str]] = {}
    for lang, text in sections(page)[title]:
        blocks.setdefault(lang, []).append(text)
    commands = [line for text in blocks.get("bash", []) for line in text.splitlines() if line.strip()]
    steps = len(commands) + len(blocks.get("python", []))
    assert 0 < steps <= 5, f"{page} / {title}: {steps} commands (the journey must take at most 5)"
    return blocks


def run_python(code: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def run_bash(script: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, (result.stdout, result.stderr)
    return result


def test_generated_pages_match_the_code():
    """After changing a docstring or a command: `make sdk-docs` and commit sdk/docs/."""
    from plinth_sdk import _docgen

    assert (DOCS / "reference.md").read_text() == _docgen.reference(), "run `make sdk-docs`"
    assert (DOCS / "cli.md").read_text() == _docgen.cli_reference(), "run `make sdk-docs`"
    assert _docgen.ASYNC_TYPES.read_text() == _docgen.async_types(), "run `make sdk-docs`"
    assert "#### `approvals.wait(" in _docgen.reference()
    assert "## `plinth templates run`" in _docgen.cli_reference()


def test_the_reference_covers_every_resource_of_the_clients():
    from plinth_sdk import _docgen, client

    page = _docgen.reference()
    missing = [attr for attr in client.RESOURCES if f"### `client.{attr}` — " not in page]
    assert not missing, f"resources left out of reference.md: {missing}"
    assert "#### `costs.upload(" in page and "#### `feedback.roadmap(" in page


@pytest.mark.django_db
def test_the_sdk_is_a_library_in_the_demo_catalog_with_its_docs(demo_org):
    from catalog.models import Entity
    from portal.techdocs import services
    from portal.techdocs.models import DocPage

    entity = Entity.objects.get(ref="component:default/plinth-sdk")
    assert entity.spec_type == "library" and entity.owner_team.name == "platform"
    site = services.docs_build(entity=entity, force=True)
    assert site.status == "ok", site.errors
    paths = set(DocPage.objects.filter(site=site).values_list("source_path", flat=True))
    assert {"index.md", "quickstart-data-scientist.md", "quickstart-ci.md", "quickstart-reviewer.md",
            "cli.md", "reference.md"} <= {Path(p).name for p in paths}


@pytest.fixture
def live_worker(redis_url, worker_env):
    from tests.conftest import start_celery_worker

    worker = start_celery_worker(redis_url, env={"MLFLOW_TRACKING_URI": os.environ["MLFLOW_TRACKING_URI"]})
    yield worker
    worker.stop()


@pytest.fixture
def env_for(portal, cli_env):
    return lambda username: {**cli_env, "PLINTH_URL": portal.url, "PLINTH_TOKEN": portal.token(username)}


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_persona_journeys_as_documented(portal, env_for, live_worker, worker_env, tmp_path):
    alice, erin = env_for("alice"), env_for("erin")

    # 1. Data scientist: register a model from a training script, see it in the catalog.
    blocks = journey("quickstart-data-scientist.md", "Register a model from a training script")
    printed = run_python(blocks["python"][0], alice, tmp_path).stdout
    assert "Churn XGBoost →" in printed and "/catalog/model/default/churn-xgb" in printed
    shown = run_bash(blocks["bash"][0], alice, tmp_path).stdout
    assert "ref          model:default/churn-xgb" in shown  # plinth catalog get
    assert re.search(r"^Model\s+churn-xgb\s+Churn XGBoost", shown, re.M)  # plinth search

    # 2. Data scientist: scaffold a feature set from the terminal (the run streams its log).
    blocks = journey("quickstart-data-scientist.md", "Scaffold a feature set from the terminal")
    (tmp_path / "values.yaml").write_text(blocks["yaml"][0])
    done = run_bash(blocks["bash"][0], alice, tmp_path)
    assert "succeeded" in done.stdout and "featureset:default/churn-activity-features" in done.stdout
    assert "[" in done.stderr  # the log lines, streamed while waiting

    # 3. ML engineer in CI requests a promotion and blocks; the reviewer decides (as documented).
    blocks = journey("quickstart-ci.md", "Request a promotion and block until it is decided")
    reviewer = journey("quickstart-reviewer.md", "Decide a request")
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "catalog-info.yaml").write_text(
        "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: ci-scored-model\n"
        "spec: {type: classifier, lifecycle: experimental, owner: fraud-ml}\n")
    ci = subprocess.Popen(["bash", "-euo", "pipefail", "-c", blocks["bash"][0]], env=alice, cwd=tmp_path / "ci",
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with Client(portal.url, erin["PLINTH_TOKEN"]) as as_erin:
        request_id = _awaiting(as_erin, ci)
    decided = run_bash(reviewer["bash"][0], {**erin, "ID": str(request_id)}, tmp_path)
    assert f"{request_id}" in decided.stdout and "fraud-detector" in decided.stdout
    out, err = ci.communicate(timeout=120)
    assert ci.returncode == 0, (out, err)
    assert out.strip().endswith("executed")
    assert f"request #{request_id}: " in err  # progress: each state the wait saw, on stderr
    assert worker_env.get_model_version_by_alias("fraud-detector", "champion").version == "3"

    # The same from Python: the reviewer's snippet lists it, and approves it here.
    from catalog import mlflow_sync

    worker_env.set_registered_model_alias("fraud-detector", "champion", "2")
    mlflow_sync.sync()
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(run=subprocess.run(
        [sys.executable, "-c", blocks["python"][0]], env=alice, capture_output=True, text=True, timeout=300)))
    thread.start()
    with Client(portal.url, erin["PLINTH_TOKEN"]) as as_erin:
        request_id = _awaiting(as_erin, None)
        listed = run_python(reviewer["python"][0], erin, tmp_path).stdout
        assert f"{request_id} promote-model-version model:default/fraud-detector alice" in listed
        as_erin.approvals.approve(request_id, comment="checked")
    thread.join(timeout=300)
    assert result["run"].returncode == 0, result["run"].stderr
    assert result["run"].stdout.strip() == f"{request_id} executed"


def _awaiting(client: Client, process, timeout: float = 90) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r.id for r in client.approvals.list(awaiting=True)]
        if found:
            return found[0]
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the CI job ended early: {process.communicate()}")
        time.sleep(0.5)
    raise AssertionError("no request reached the reviewer")
