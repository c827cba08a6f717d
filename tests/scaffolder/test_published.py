"""Published repositories live in the database and the shared storage, not on the worker's disk
(docs/scaffolder.md#publishing): the name is reserved in a row, the repository is a git bundle, the
registered descriptor is an upload. "Another node" here is the same process with a scaffolder root and
an upload root of its own, emptied of everything the publishing node wrote."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from django.apps import apps

from catalog import services as catalog_services
from catalog.models import Entity, Location
from portal.scaffolder import actions, conf, downloads
from portal.scaffolder.models import PublishedRepository, Run, RunStatus
from portal.scaffolder.selectors import name_clashes, runs_for

from .conftest import published_git, register_template, run_inline, start, unique

pytestmark = pytest.mark.django_db

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(template)s, title: Published}
spec:
  owner: fraud-ml
  type: test
  parameters: []
  steps:
    - {id: fetch, action: fetch:plain, input: {url: ./skeleton}}
    - {id: publish, action: publish:git, input: {owner: fraud-ml, repo: %(repo)s}}
    - {id: register, action: catalog:register, input: {repoContentsUrl: "${{ steps.publish.output.repoContentsUrl }}"}}
  output:
    links: [{title: Repository, url: "${{ steps.publish.output.remoteUrl }}"}]
"""

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89\xff"

DESCRIPTOR = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: %(repo)s
  description: {$text: ./README.md}
  annotations: {plinth.dev/techdocs-ref: "dir:./docs"}
spec: {type: service, lifecycle: experimental, owner: fraud-ml}
"""


def _template(tmp_path, repo: str, **extra_files):
    files = {"skeleton/catalog-info.yaml": DESCRIPTOR % {"repo": repo},
             "skeleton/README.md": "Scores churn.\n",
             "skeleton/docs/index.md": "# Published\n\nFrom the bundle.\n", **extra_files}
    return register_template(tmp_path, TEMPLATE % {"template": unique("tpl"), "repo": repo}, files)


def _publish(tmp_path, user, repo: str, **extra_files) -> Run:
    entity = _template(tmp_path, repo, **extra_files)
    return run_inline(start(user, entity.name, {}, entity=entity))


def _another_node(settings, tmp_path) -> None:
    node = tmp_path / unique("node")
    settings.PLINTH_SCAFFOLDER_ROOT = node / "scaffolder"
    settings.PLINTH_CATALOG_UPLOAD_ROOT = node / "catalog-uploads"


def test_the_repository_is_a_bundle_and_its_descriptor_an_upload_read_on_another_node(org, scaffolder_root,
                                                                                       tmp_path, settings):
    repo = unique("pub")
    entity = _template(tmp_path, repo)
    skeleton = Path(entity.source).parent / "skeleton"
    (skeleton / "docs" / "index.md").write_text("# Published\n\nFrom the bundle.\n\n![Logo](img/logo.png)\n")
    (skeleton / "docs" / "img").mkdir()
    (skeleton / "docs" / "img" / "logo.png").write_bytes(PNG)
    run = run_inline(start(org["users"]["alice"], entity.name, {}, entity=entity))
    assert run.status == RunStatus.SUCCEEDED, (run.error, list(run.logs.values_list("message", flat=True)))
    repository = PublishedRepository.objects.get(owner="fraud-ml", name=repo)
    publish = run.steps.get(step_id="publish").output
    assert publish["commitHash"] == repository.commit and publish["repoContentsUrl"] == f"published:fraud-ml/{repo}"
    assert publish["remoteUrl"] == f"/create/repositories/fraud-ml/{repo}.bundle"
    assert published_git("fraud-ml", repo, "ls-files").split() == [
        "README.md", "catalog-info.yaml", "docs/img/logo.png", "docs/index.md"]
    assert not (conf.publish_root() / "repos" / "fraud-ml" / f"{repo}.git").exists(), "no bare repository kept"
    entity = Entity.objects.get(ref=f"component:default/{repo}")
    assert entity.description.strip() == "Scores churn."
    location = entity.location
    assert location.type == "upload" and location.target.endswith("/catalog-info.yaml")
    assert entity.source == location.target
    assert run.steps.get(step_id="register").output["catalogInfoUrl"] == f"published:fraud-ml/{repo}/catalog-info.yaml"

    # Another node: nothing of the worker's disk. Its refresh and docs build read the database.
    shutil.rmtree(scaffolder_root)
    _another_node(settings, tmp_path)
    plan = catalog_services.location_refresh(location=Location.objects.get(pk=location.pk))
    assert not plan.errors and list(plan.unchanged) == [entity.ref], [str(e) for e in plan.errors]
    from portal.techdocs import services as techdocs

    techdocs.docs_build(entity=Entity.objects.get(pk=entity.pk))
    site = Entity.objects.get(pk=entity.pk).techdocs_site
    assert "From the bundle." in site.pages.get(path="").html
    assert bytes(site.assets.get(path="img/logo.png").data) == PNG  # stored as bytes with the upload
    # ... and a checkout of the repository, when a step needs one, comes from the bundle.
    checkout = actions.published_checkout(repository, actions._git_env(None))
    assert checkout.is_relative_to(settings.PLINTH_SCAFFOLDER_ROOT)
    assert (checkout / "docs" / "img" / "logo.png").read_bytes() == PNG


def test_a_name_is_taken_on_every_node_and_a_failed_publication_frees_it(org, scaffolder_root, tmp_path, settings):
    alice = org["users"]["alice"]
    repo = unique("taken")
    assert _publish(tmp_path, alice, repo).status == RunStatus.SUCCEEDED
    first = PublishedRepository.objects.get(name=repo).commit
    assert name_clashes(alice, repo, "fraud-ml")[-1] == f"A repository fraud-ml/{repo} already exists."
    assert f"A repository fraud-ml/{repo} already exists." in name_clashes(alice, repo, None)

    _another_node(settings, tmp_path)  # the other node's disk has no such repository
    again = _publish(tmp_path, alice, repo)
    assert again.status == RunStatus.FAILED and f"repository fraud-ml/{repo} already exists" in again.error
    assert PublishedRepository.objects.get(name=repo).commit == first
    assert published_git("fraud-ml", repo, "rev-list", "--all").split() == [first]



def test_a_repository_is_downloaded_by_those_who_see_its_run_and_missing_for_others(org, scaffolder_root, tmp_path,
                                                                                     client):
    repo = unique("dl")
    run = _publish(tmp_path, org["users"]["alice"], repo)
    url = f"/create/repositories/fraud-ml/{repo}.bundle"
    assert client.get(url).status_code == 302  # sign in first
    client.force_login(org["users"]["alice"])
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "application/octet-stream"
    assert f'filename="{repo}.bundle"' in response["Content-Disposition"]
    bundle = tmp_path / "got.bundle"
    bundle.write_bytes(b"".join(response.streaming_content))
    subprocess.run(["git", "clone", "-q", str(bundle), str(tmp_path / "clone")], check=True, capture_output=True)
    assert (tmp_path / "clone" / "catalog-info.yaml").is_file()
    page = client.get(run.get_absolute_url()).content.decode()
    assert url in page  # the run page links it
    for missing in (f"/create/repositories/fraud-ml/{repo}x.bundle", f"/create/repositories/other/{repo}.bundle"):
        assert client.get(missing).status_code == 404
    carol = org["users"]["carol"]  # recsys
    assert not runs_for(carol).filter(pk=run.pk).exists()
    client.force_login(carol)
    assert client.get(url).status_code == 404  # looks exactly like a missing one
    assert client.post(url).status_code == 405


@pytest.mark.parametrize("url, message", [
    ("file:///srv/scaffolder/published/checkouts/fraud-ml/x", "a path on a worker's disk"),
    ("/etc/passwd", "only repositories published by this portal"),
    ("https://github.com/acme/x", "only repositories published by this portal"),
    ("published:fraud-ml/never-published", "is not a repository published by this portal"),
    ("published:../etc/passwd", "is not a repository published by this portal"),
    ("published:fraud-ml", "is not a repository published by this portal"),
])
def test_catalog_register_names_what_is_wrong_with_a_url(org, scaffolder_root, tmp_path, url, message):
    entity = register_template(tmp_path, f"""\
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata: {{name: {unique("reg")}}}
        spec:
          owner: fraud-ml
          type: test
          steps:
            - {{id: register, action: catalog:register, input: {{repoContentsUrl: "{url}"}}}}
        """)
    run = run_inline(start(org["users"]["alice"], entity.name, {}, entity=entity))
    assert run.status == RunStatus.FAILED and message in run.error, run.error
    assert not Location.objects.filter(type="upload").exists()


def test_the_migration_moves_repositories_left_on_disk_into_the_database(org, scaffolder_root, tmp_path):
    env = actions._git_env(None)
    bare = conf.publish_root() / "repos" / "legacy" / "old-project.git"
    work = tmp_path / "old"
    work.mkdir()
    (work / "catalog-info.yaml").write_text("kind: Component\n")
    actions.git("init", "-q", "-b", "main", str(work), env=env)
    actions.git("-C", str(work), "add", "-A", env=env)
    actions.git("-C", str(work), "commit", "-q", "-m", "old", env=env)
    bare.parent.mkdir(parents=True)
    actions.git("clone", "-q", "--bare", str(work), str(bare), env=env)
    run_uid = uuid.uuid4()
    actions.git("--git-dir", str(bare), "config", "plinth.run", str(run_uid), env=env)
    (conf.publish_root() / "repos" / "legacy" / "broken.git").mkdir()

    migration = importlib.import_module("portal.scaffolder.migrations.0004_published_repository")
    migration.forwards(apps, None)
    repository = PublishedRepository.objects.get(owner="legacy", name="old-project")
    assert (repository.run_uid, repository.branch) == (run_uid, "main")
    assert repository.commit == actions.git("-C", str(work), "rev-parse", "HEAD", env=env)
    assert downloads.bundle_exists(repository)
    assert published_git("legacy", "old-project", "ls-files").split() == ["catalog-info.yaml"]
    assert not PublishedRepository.objects.filter(name="broken").exists()
    migration.forwards(apps, None)  # again: nothing doubled
    assert PublishedRepository.objects.filter(owner="legacy").count() == 1


def test_a_platform_admin_frees_a_name_in_the_admin_and_its_bundle_goes_with_it(org, scaffolder_root, tmp_path,
                                                                                 client):
    alice = org["users"]["alice"]
    repo = unique("freed")
    assert _publish(tmp_path, alice, repo).status == RunStatus.SUCCEEDED
    repository = PublishedRepository.objects.get(name=repo)
    client.force_login(org["users"]["grace"])
    response = client.post(f"/admin/scaffolder/publishedrepository/{repository.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302, response.content[:500]
    assert not PublishedRepository.objects.filter(name=repo).exists() and not downloads.bundle_exists(repository)
    assert name_clashes(alice, repo, "fraud-ml") == [f"The catalog already has a Component named {repo} "
                                                      "(namespace default)."]


def test_a_scaffolder_root_reached_through_a_symbolic_link_publishes_and_registers(org, tmp_path, settings):
    """Var dirs often sit behind a link (a mount, /var on macOS): the registered path is taken as given."""
    (tmp_path / "real-root").mkdir()
    (tmp_path / "linked-root").symlink_to(tmp_path / "real-root")
    settings.PLINTH_SCAFFOLDER_ROOT = tmp_path / "linked-root" / "scaffolder"
    repo = unique("linked")
    run = _publish(tmp_path, org["users"]["alice"], repo)
    assert run.status == RunStatus.SUCCEEDED, (run.error, list(run.logs.values_list("message", flat=True)))
    assert Entity.objects.get(ref=f"component:default/{repo}").location.target.endswith("/catalog-info.yaml")
