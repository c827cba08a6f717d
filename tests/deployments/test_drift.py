"""Compliance drift: flagged on the model page, listed for reviewers, audited once per occurrence,
cleared when the approval exists; which environments are governed comes from deployments.rego."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from catalog.models import ModelVersion
from portal.core.models import AuditEvent
from portal.deployments import services
from portal.deployments.models import Drift
from portal.governance import conf as governance_conf
from portal.governance.models import ActionType, ApprovalRequest, State

from .conftest import event

pytestmark = pytest.mark.django_db
PAGE = "/catalog/model/default/fraud-detector/"


def report(user, **overrides):
    return services.deployment_report(actor=user, body=event(**overrides))[0]


def drift_audits(action="deployments.drift.detected") -> int:
    return AuditEvent.objects.filter(action=action).count()


def executed_promotion(model, user, version: str, alias: str) -> ApprovalRequest:
    """An executed promotion as governance leaves it (its workflow is tested in tests/governance)."""
    req = ApprovalRequest.objects.create(action=ActionType.PROMOTE_MODEL_VERSION, target_ref=model.ref, entity=model,
                                         owner_team=model.owner_team, params={"version": version, "alias": alias},
                                         requester=user, state=State.EXECUTED, workflow_name="promote")
    from portal.governance import signals

    signals.request_executed.send(sender=ApprovalRequest, request_id=req.pk, action=req.action, entity_id=model.pk)
    return req


def page(user) -> str:
    client = Client()
    client.force_login(user)
    return client.get(PAGE).content.decode()


def test_live_in_prod_without_approval_is_flagged_listed_and_audited_once(detector, demo_org):
    users = demo_org["users"]
    report(users["bob"])
    assert Drift.objects.filter(cleared_at__isnull=True).count() == 1
    assert drift_audits() == 1
    report(users["bob"], endpoint="https://fraud.prod.example.com/v2/predict")  # still drifting: no new row
    services.drift_refresh(model_ids=None)
    html = page(users["alice"])
    page(users["alice"])  # looking twice audits nothing
    assert drift_audits() == 1 and Drift.objects.count() == 1
    assert 'data-testid="drift-flag"' in html and "v3</strong> is live in <strong>prod" in html
    assert 'data-testid="drift-badge"' in html
    reviewer = Client()
    reviewer.force_login(users["erin"])
    listing = reviewer.get("/reviews/drift/")
    assert listing.status_code == 200 and "Fraud detector" in listing.content.decode()
    member = Client()
    member.force_login(users["dan"])
    assert member.get("/reviews/drift/").status_code == 403  # not a reviewer


def test_an_executed_promotion_clears_the_drift_and_a_new_occurrence_audits_again(detector, demo_org):
    users = demo_org["users"]
    report(users["bob"])
    executed_promotion(detector, users["bob"], "3", "champion")  # champion -> prod by default
    drift = Drift.objects.get()
    assert drift.cleared_at is not None and drift.cleared_reason == "approved"
    assert drift_audits("deployments.drift.cleared") == 1
    assert 'data-testid="drift-flag"' not in page(users["alice"])
    report(users["bob"], version="2")  # v2 has no approval: a new occurrence
    assert Drift.objects.filter(cleared_at__isnull=True).get().version == "2"
    assert drift_audits() == 2


def test_an_approval_for_another_environment_or_version_does_not_count(detector, demo_org):
    users = demo_org["users"]
    executed_promotion(detector, users["bob"], "3", "staging")  # staging, not prod
    executed_promotion(detector, users["bob"], "2", "champion")  # prod, but v2
    report(users["bob"])
    assert Drift.objects.filter(cleared_at__isnull=True).count() == 1


def test_ungoverned_environments_and_non_live_states_do_not_drift(detector, demo_org):
    bob = demo_org["users"]["bob"]
    report(bob, environment="dev")
    report(bob, status="deploying")
    report(bob, status="failed", version="2")
    assert not Drift.objects.exists()
    # fraud-detector is risk tier 1: the policy governs its staging too
    report(bob, environment="staging")
    assert Drift.objects.get().environment == "staging"
    # retiring it clears the drift
    report(bob, environment="staging", status="retired")
    assert Drift.objects.get().cleared_reason == "no longer live"


def test_the_rego_rule_decides_and_a_broken_rule_fails_closed(detector, demo_org, tmp_path, settings):
    bob = demo_org["users"]["bob"]
    folder = tmp_path / "policies"
    shutil.copytree(governance_conf.DEFAULTS["POLICY_DIR"], folder)
    rule = folder / "deployments.rego"
    rule.write_text(rule.read_text().replace('production_like := {"prod", "production"}',
                                             'production_like := {"production"}'))
    settings.PLINTH_GOVERNANCE_POLICY_DIR = folder
    report(bob)
    assert not Drift.objects.exists(), "prod is not governed by this rule"
    rule.write_text("package plinth.rules.deployments\n\nthis is not rego\n")
    services.drift_refresh(model_ids=None)
    drift = Drift.objects.get()
    assert "policy error (fail closed)" in drift.reason and "deployments.rego" in drift.reason


def test_drift_list_hides_models_the_reviewer_may_not_see(chargeback, demo_org):
    users = demo_org["users"]
    services.deployment_report(actor=users["alice"], body=event(model=chargeback.ref, version="1"))
    assert Drift.objects.filter(model=chargeback).exists()
    erin = Client()  # risk-governance reviewer: chargeback-predictor is fraud-ml's private model
    erin.force_login(users["erin"])
    assert "chargeback" not in erin.get("/reviews/drift/").content.decode().lower()
    frank = Client()  # reviewer in fraud-ml
    frank.force_login(users["frank"])
    assert "Chargeback predictor" in frank.get("/reviews/drift/").content.decode()


def test_model_page_queries_do_not_grow_with_deployments(detector, demo_org):
    users = demo_org["users"]
    client = Client()
    client.force_login(users["alice"])
    start = datetime.now(UTC) - timedelta(hours=3)
    report(users["bob"], version="1", environment="dev", time=start.isoformat())
    client.get(PAGE)
    with CaptureQueriesContext(connection) as few:
        assert client.get(PAGE).status_code == 200
    for n in range(4, 24):
        ModelVersion.objects.create(entity=detector, version=str(n), version_number=n)
    for i, n in enumerate(range(4, 24)):
        for env in ("dev", "staging", "prod"):
            report(users["bob"], version=str(n), environment=env, time=(start + timedelta(minutes=i)).isoformat())
    with CaptureQueriesContext(connection) as many:
        html = client.get(PAGE).content.decode()
    assert html.count('class="dep-event"') == 50, "the timeline shows the newest 50 events"
    assert len(many) == len(few), [q["sql"][:120] for q in many.captured_queries][len(few):]


def test_unregistering_the_model_removes_its_deployment_entities(detector, demo_org, django_capture_on_commit_callbacks):
    from catalog import services as catalog_services
    from catalog.models import Entity

    report(demo_org["users"]["bob"], environment="dev")
    assert Entity.objects.filter(kind_key="deployment").count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_unregister(location=detector.location, actor=None)
    assert not Entity.objects.filter(kind_key="deployment").exists()
    assert not Entity.objects.filter(ref="model:default/fraud-detector").exists()


def test_a_model_kept_as_an_orphan_keeps_its_deployment_entities(demo_org, tmp_path, settings,
                                                                 django_capture_on_commit_callbacks):
    """Gone from its file under the `keep` strategy, a model stays in the catalog, flagged orphan: its
    Deployment entities stay with it."""
    from catalog import services as catalog_services
    from catalog.models import Entity, Location

    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    model = ("apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata: {name: orphan-scorer}\n"
             "spec: {type: classifier, lifecycle: production, owner: fraud-ml}\n")
    other = ("apiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata: {name: orphan-scorer-data}\n"
             "spec: {owner: fraud-ml}\n")
    path = tmp_path / "catalog-info.yaml"
    path.write_text(model + "---\n" + other)
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_register(target=str(path), actor=None, file_roots=None)
    scorer = Entity.objects.get(ref="model:default/orphan-scorer")
    ModelVersion.objects.create(entity=scorer, version="1", version_number=1)
    report(demo_org["users"]["bob"], model=scorer.ref, version="1", environment="dev")
    deployments = set(Entity.objects.filter(kind_key="deployment").values_list("ref", flat=True))
    assert len(deployments) == 1
    path.write_text(other)
    with django_capture_on_commit_callbacks(execute=True):
        catalog_services.location_refresh(location=Location.objects.get(target=str(path)))
    assert Entity.objects.get(pk=scorer.pk).orphan
    assert set(Entity.objects.filter(kind_key="deployment").values_list("ref", flat=True)) == deployments


def test_policy_check_compiles_the_rule_module(tmp_path, settings):
    from django.core.management import CommandError, call_command

    folder = tmp_path / "policies"
    shutil.copytree(governance_conf.DEFAULTS["POLICY_DIR"], folder)
    settings.PLINTH_GOVERNANCE_POLICY_DIR = folder
    call_command("policy", "check")  # the shipped module compiles
    (folder / "deployments.rego").write_text("package plinth.rules.deployments\n\ngoverned_environment if {\n")
    with pytest.raises(CommandError, match="do not compile"):
        call_command("policy", "check")
