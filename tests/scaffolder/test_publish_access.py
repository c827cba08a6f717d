"""Who may publish where, which published repository catalog:register may read, what the name check
tells about repositories, and that a registration the catalog would refuse fails the run before anything
is published (docs/scaffolder.md#publishing)."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from catalog import services as catalog_services
from catalog.models import Location
from portal.scaffolder import services
from portal.scaffolder.models import PublishedRepository, Run, RunStatus
from portal.scaffolder.selectors import name_clashes

from .conftest import register_template, run_inline, start, unique

pytestmark = pytest.mark.django_db

PRIVATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(name)s, title: Private project}
spec:
  owner: %(owner)s
  type: test
  parameters:
    - required: [name, owner]
      properties:
        name: {type: string, ui:field: EntityNamePicker}
        owner: {type: string, ui:field: OwnerPicker}
  steps:
    - {id: fetch, action: fetch:template, input: {url: ./skeleton, values: {name: '${{ parameters.name }}', owner: '${{ parameters.owner }}'}}}
    - {id: publish, action: publish:git, input: {repoUrl: "local?owner=%(namespace)s&repo=${{ parameters.name }}"}}
"""
REGISTER = "    - {id: register, action: catalog:register, input: {repoContentsUrl: '${{ steps.publish.output.repoContentsUrl }}'}}\n"
PRIVATE_COMPONENT = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${{ values.name }}
  annotations: {plinth.dev/visibility: private}
spec: {type: service, lifecycle: experimental, owner: ${{ values.owner }}}
"""
OTHER = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: %s}
spec: {type: service, lifecycle: experimental, owner: %s}
"""
BY_URL = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(name)s, title: Register a repository}
spec:
  owner: %(owner)s
  type: test
  parameters:
    - properties:
        target: {type: string}
  steps:
    - {id: register, action: catalog:register, input: {catalogInfoUrl: "${{ parameters.target }}"}}
"""


def _private_repository(org, tmp_path, *, register: bool, namespace: str = "${{ parameters.owner }}",
                        extra: dict | None = None) -> str:
    """A repository alice publishes for fraud-ml from a run of fraud-ml (its component private)."""
    alice = org["users"]["alice"]
    body = PRIVATE % {"name": unique("priv"), "owner": "fraud-ml", "namespace": namespace} + (
        REGISTER if register else "")
    entity = register_template(tmp_path, body, {"skeleton/catalog-info.yaml": PRIVATE_COMPONENT, **(extra or {})},
                               user=alice)
    name = unique("acq")
    run = run_inline(start(alice, entity.name, {"name": name, "owner": "fraud-ml"}, entity=entity))
    assert run.status == RunStatus.SUCCEEDED, run.error
    return name


def _register_by_url(tmp_path, user, target: str, owner: str) -> Run:
    entity = register_template(tmp_path, BY_URL % {"name": unique("byurl"), "owner": owner})
    return run_inline(start(user, entity.name, {"target": target}, entity=entity))


def test_another_teams_repository_answers_exactly_as_a_missing_one(org, scaffolder_root, tmp_path):
    """carol (recsys) names files of fraud-ml's private repository, already registered by its run: every
    answer is the one a missing repository gets (no file oracle, no descriptor error naming the private
    entity or the keys of a private file, no "PermissionDenied"), and nothing is registered."""
    secret = _private_repository(org, tmp_path, register=True, extra={
        "skeleton/other.yaml": OTHER % ("grabbed", "recsys"), "skeleton/deal.yaml": "customer: ACME\nprice: 12\n"})
    carol = org["users"]["carol"]
    missing = _register_by_url(tmp_path, carol, "published:fraud-ml/nope/x.yaml", "recsys")
    expected = "Step 'register' (catalog:register) failed: published:fraud-ml/{} is not a repository published by this portal"
    assert missing.status == RunStatus.FAILED and missing.error == expected.format("nope")
    for path in ("nope.yaml", "catalog-info.yaml", "deal.yaml", "other.yaml"):
        run = _register_by_url(tmp_path, carol, f"published:fraud-ml/{secret}/{path}", "recsys")
        assert run.status == RunStatus.FAILED and run.error == expected.format(secret), (path, run.error)
        assert run.steps.get(step_id="register").message == expected.format(secret).split("failed: ", 1)[1]
    assert list(Location.objects.filter(target__contains=secret).values_list("created_by__username", flat=True)) == [
        "alice"]


def test_a_teams_repository_is_registered_by_its_editors_who_see_its_run(org, scaffolder_root, tmp_path):
    """Registering a repository an earlier run published: bob (fraud-ml member, sees fraud-ml's runs) may;
    heidi (fraud-ml viewer) gets the missing answer."""
    name = _private_repository(org, tmp_path, register=False)
    target = f"published:fraud-ml/{name}/catalog-info.yaml"
    heidi = _register_by_url(tmp_path, org["users"]["heidi"], target, "fraud-ml")
    assert heidi.status == RunStatus.FAILED and "is not a repository published by this portal" in heidi.error
    bob = _register_by_url(tmp_path, org["users"]["bob"], target, "fraud-ml")
    assert bob.status == RunStatus.SUCCEEDED, bob.error
    assert bob.steps.get(step_id="register").output["entityRef"] == f"component:default/{name}"
    assert Location.objects.get(target__contains=name).created_by == org["users"]["bob"]


def test_the_name_check_is_silent_about_another_teams_private_repository(org, scaffolder_root, tmp_path):
    """No owner chosen yet (the wizard's `p.owner=`, the API without an owner): another team's private
    repository looks like a free name; its own team and platform admins are told."""
    secret = _private_repository(org, tmp_path, register=True)
    carol, bob, grace = (org["users"][n] for n in ("carol", "bob", "grace"))
    taken = f"A repository fraud-ml/{secret} already exists."
    for owner in (None, "", "fraud-ml"):
        assert name_clashes(carol, secret, owner) == []
    assert taken in name_clashes(bob, secret, None) and taken in name_clashes(grace, secret, "")
    client = Client()
    client.force_login(carol)
    page = client.get(f"/create/templates/default/ml-model-service/check-name/?p.name={secret}&p.owner=")
    assert page.status_code == 200 and "fraud-ml" not in page.content.decode()
    api = client.post("/api/v1/scaffolder/runs", {"templateRef": "ml-model-service", "values": {"name": secret}},
                      content_type="application/json")
    assert "fraud-ml" not in api.content.decode()


def test_a_true_clash_in_a_shared_namespace_is_refused_by_publish_naming_only_what_was_typed(org, scaffolder_root,
                                                                                             tmp_path):
    """A private repository in a namespace that is no team's (`local`): the name check cannot tell carol,
    and publish refuses with the name she chose, nothing about whose it is."""
    secret = _private_repository(org, tmp_path, register=False, namespace="local")
    carol = org["users"]["carol"]
    assert name_clashes(carol, secret, None) == []
    entity = register_template(tmp_path, PRIVATE % {"name": unique("mine"), "owner": "recsys", "namespace": "local"},
                               {"skeleton/catalog-info.yaml": PRIVATE_COMPONENT}, user=carol)
    run = run_inline(start(carol, entity.name, {"name": secret, "owner": "recsys"}, entity=entity))
    assert run.status == RunStatus.FAILED
    assert run.error == f"Step 'publish' (publish:git) failed: repository local/{secret} already exists; choose another name"
    assert PublishedRepository.objects.get(owner="local", name=secret).run_uid != run.uid


@pytest.fixture
def docs_template(backstage_compat, org):
    plan = catalog_services.location_register(target=str(backstage_compat / "templates/docs-template/template.yaml"),
                                              actor=None, file_roots=None)
    assert not plan.errors


def _docs_run(user, name: str, *, namespace: str, owner: str | None = None) -> Run:
    values = {"name": name, "description": "d", "repoUrl": f"github.com?owner={namespace}&repo={name}"}
    return run_inline(start(user, "docs-template", {**values, **({"owner": owner} if owner else {})}))


def test_a_descriptor_the_catalog_refuses_fails_the_run_before_publishing(org, scaffolder_root, docs_template):
    """The Backstage docs-template with its optional owner left empty: the descriptor has no owner. The
    run fails at publish, nothing is published, a retry fails the same way, and the name stays free for
    "Start again"."""
    alice = org["users"]["alice"]
    name = unique("doc")
    run = _docs_run(alice, name, namespace="fraud-ml")
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("Step 'publish' (publish:github) failed: step 'register' (catalog:register) would fail, "
                                "so nothing was published: the generated catalog-info.yaml cannot be registered: ")
    assert "spec.owner: must be string, not None" in run.error
    assert [(s.step_id, s.status) for s in run.steps.all()] == [("fetch", "done"), ("publish", "failed"),
                                                                ("register", "skipped")]
    assert not PublishedRepository.objects.filter(name=name).exists()
    services.run_retry(run=run, actor=alice)
    again = run_inline(Run.objects.get(pk=run.pk))
    assert again.status == RunStatus.FAILED and "spec.owner: must be string, not None" in again.error
    assert not PublishedRepository.objects.filter(name=name).exists()
    assert name_clashes(alice, name, None) == [] and name_clashes(alice, name, "fraud-ml") == []
    fixed = _docs_run(alice, name, namespace="fraud-ml", owner="fraud-ml")  # "Start again", owner chosen
    assert fixed.status == RunStatus.SUCCEEDED, fixed.error


def test_a_hidden_entitys_name_fails_the_run_before_publishing_without_naming_its_location(org, scaffolder_root):
    """carol names her model chargeback-predictor, fraud-ml's private model: the run fails before
    publishing, saying the name is taken, neither where nor whose."""
    carol = org["users"]["carol"]
    values = {"name": "chargeback-predictor", "owner": "recsys", "modelType": "classifier"}
    run = run_inline(start(carol, "ml-model-service", values))
    assert run.status == RunStatus.FAILED
    assert ("model:default/chargeback-predictor: this name is already taken in the catalog; choose another name"
            in run.error), run.error
    assert "registered by location" not in run.error and "fraud-ml" not in run.error
    assert run.error.startswith("Step 'publish' (publish:git) failed: step 'register'")
    assert not PublishedRepository.objects.filter(name="chargeback-predictor").exists()


def test_a_register_step_that_will_not_run_is_not_checked_before_publishing(org, scaffolder_root, tmp_path):
    """The check renders the later steps as they will run: a register step whose condition is false is
    left alone (its descriptor would be refused), and publish goes ahead."""
    body = PRIVATE % {"name": unique("cond"), "owner": "fraud-ml", "namespace": "${{ parameters.owner }}"} + (
        "    - {id: register, if: '${{ not steps.publish.output.commitHash }}', action: catalog:register}\n")
    alice = org["users"]["alice"]
    entity = register_template(tmp_path, body, {"skeleton/catalog-info.yaml": OTHER % ("x", "recsys")}, user=alice)
    name = unique("cond")
    run = run_inline(start(alice, entity.name, {"name": name, "owner": "fraud-ml"}, entity=entity))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.steps.get(step_id="register").status == "skipped"
    assert PublishedRepository.objects.filter(owner="fraud-ml", name=name).exists()


def test_a_run_stopped_after_publishing_registers_from_the_bundle_when_retried_on_another_node(
        org, scaffolder_root, tmp_path, settings):
    """Publish done on node 1, then the run's time limit stops it; the retry on node 2 (no checkout)
    does not publish again, and the registration reads the repository from its bundle."""
    alice = org["users"]["alice"]
    name = unique("resume")
    body = PRIVATE % {"name": unique("slow"), "owner": "fraud-ml", "namespace": "${{ parameters.owner }}"} + (
        "    - {id: wait, action: debug:wait, input: {seconds: 4}}\n" + REGISTER)
    entity = register_template(tmp_path, body, {"skeleton/catalog-info.yaml": PRIVATE_COMPONENT}, user=alice)
    settings.PLINTH_SCAFFOLDER_RUN_TIME_LIMIT = 3
    run = run_inline(start(alice, entity.name, {"name": name, "owner": "fraud-ml"}, entity=entity))
    assert run.status == RunStatus.FAILED and "during step 'wait'" in run.error, run.error
    commit = PublishedRepository.objects.get(name=name).commit

    node = tmp_path / unique("node")
    settings.PLINTH_SCAFFOLDER_ROOT = node / "scaffolder"
    settings.PLINTH_CATALOG_UPLOAD_ROOT = node / "catalog-uploads"
    settings.PLINTH_SCAFFOLDER_RUN_TIME_LIMIT = 60
    services.run_retry(run=run, actor=alice)
    run = run_inline(Run.objects.get(pk=run.pk))
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.logs.filter(message__contains="published in an earlier attempt; not repeated").exists()
    assert PublishedRepository.objects.get(name=name).commit == commit
    assert (Path(settings.PLINTH_SCAFFOLDER_ROOT) / "published" / "checkouts" / "fraud-ml" / name).is_dir()
    assert run.steps.get(step_id="register").output["entityRef"] == f"component:default/{name}"


def test_nobody_publishes_into_a_team_namespace_they_may_not_create_for(org, scaffolder_root, docs_template):
    """dan (recsys member) asks for a repository of fraud-ml (in any letter case): refused before the name
    is taken, so fraud-ml keeps it."""
    dan = org["users"]["dan"]
    for namespace in ("fraud-ml", "Fraud-ML"):
        name = unique("squat")
        run = _docs_run(dan, name, namespace=namespace, owner="recsys")
        assert run.status == RunStatus.FAILED
        assert run.error == (f"Step 'publish' (publish:github) failed: cannot publish {namespace}/{name}: repositories "
                             f"owned by {namespace} are published by its members, maintainers and admins; choose one "
                             "of your teams as the owner")
        assert not PublishedRepository.objects.filter(name=name).exists()
    mine = _docs_run(dan, unique("doc"), namespace="recsys", owner="recsys")
    assert mine.status == RunStatus.SUCCEEDED, mine.error


def test_a_viewer_publishes_nowhere(org, scaffolder_root, tmp_path):
    """heidi (fraud-ml viewer) may start a run on her own behalf, but not publish, not even into a
    namespace that is no team's."""
    heidi = org["users"]["heidi"]
    template = f"""\
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata: {{name: {unique("viewer")}}}
        spec:
          owner: fraud-ml
          type: test
          steps:
            - {{id: write, action: catalog:write, input: {{entity: {{kind: Component}}}}}}
            - {{id: publish, action: publish:git, input: {{repo: mine}}}}
        """
    entity = register_template(tmp_path, template)
    run = run_inline(start(heidi, entity.name, {}, entity=entity))
    assert run.status == RunStatus.FAILED
    assert run.error == ("Step 'publish' (publish:git) failed: cannot publish local/mine: publishing a repository "
                         "needs the member role (or higher) in a team")
    assert not PublishedRepository.objects.filter(name="mine").exists()
