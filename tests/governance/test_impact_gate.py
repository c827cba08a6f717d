"""The downstream_impact gate through the real Rego evaluator (regopy), the severity rule that lets a
gate warn for some failures and block for others, and the summary the gate reads: named, private and
hidden critical assets from the requester's point of view."""

from __future__ import annotations

import pytest

from portal.accounts import permissions
from portal.governance import impact, policy
from portal.governance.models import RequestImpact

pytestmark = pytest.mark.django_db


def evaluate(summary: dict, enforcement: str = "block") -> policy.GateOutcome:
    """The whole bundle runs on one input (as for a request), so it carries what every gate reads."""
    payload = {"action": "deprecate", "params": {}, "target": {"ref": "dataset:default/src", "kind": "Dataset",
               "owner": "fraud-ml", "owner_team": "fraud-ml", "risk_tier": None, "tier_key": "1",
               "lifecycle": "production"},
               "model_card": {"present": False, "path": "", "sections": []}, "candidate": None, "champion": None,
               "alias": None, "datasets": [], "features": [], "impact": summary}
    outcomes, _ = policy.current().evaluate({"downstream_impact": enforcement}, payload)
    return outcomes[0]


def item(name: str, kind: str = "model", *, critical: bool = False, reason: str = "", team_id=None,
         visibility: str = "internal", team: str = "recsys") -> dict:
    return {"id": f"entity:{kind}:default:{name}", "type": "ENTITY", "kind": kind, "name": name, "title": name,
            "ref": f"{kind}:default/{name}", "url": f"/catalog/{kind}/default/{name}/", "team": team,
            "team_id": team_id, "visibility": visibility, "lifecycle": "production" if critical else "experimental",
            "distance": 1, "critical": critical, "reason": reason}


def snapshot(*items: dict) -> RequestImpact:
    return RequestImpact(hops=10, total=len(items), critical=sum(i["critical"] for i in items), items=list(items))


def test_policy_tests_beside_the_gate_pass():
    """`manage.py policy test` runs downstream_impact_test.rego with the others; every rule is true."""
    outcomes = [o for o in policy.run_tests() if o.file == "downstream_impact_test.rego"]
    assert len(outcomes) >= 8
    assert all(o.passed for o in outcomes), [(o.name, o.message) for o in outcomes if not o.passed]


def test_nothing_downstream_passes(demo_org):
    outcome = evaluate(impact.gate_summary(snapshot(), demo_org["users"]["alice"]))
    assert outcome.passed and not outcome.blocking
    assert any(r["message"] == "Nothing depends on the target downstream" for r in outcome.rules)


def test_dev_dependants_warn_and_do_not_block(demo_org):
    outcome = evaluate(impact.gate_summary(snapshot(item("churn"), item("feed", "pipeline")),
                                           demo_org["users"]["alice"]))
    assert not outcome.passed and not outcome.blocking
    warning = next(r for r in outcome.rules if not r["pass"])
    assert warning == {"rule": "downstream-dependants", "pass": False, "severity": "warn",
                       "message": "2 downstream assets depend on the target: 1 model, 1 pipeline; "
                                  "their owners are notified"}


def test_internal_production_model_blocks_by_name(demo_org):
    recsys = demo_org["teams"]["recsys"]
    summary = impact.gate_summary(snapshot(item("ranker", critical=True, reason="production model", team_id=recsys.pk)),
                                  demo_org["users"]["alice"])
    outcome = evaluate(summary)
    assert outcome.blocking
    assert {"rule": "critical:model:default/ranker", "pass": False,
            "message": "production model model:default/ranker (team recsys) depends on the target: it would break"} \
        in outcome.rules


def test_hidden_production_model_blocks_without_its_name(demo_org):
    """alice (fraud-ml) may not see recsys's private model: the gate counts it and names nothing."""
    recsys = demo_org["teams"]["recsys"]
    secret = item("secret-ranker", critical=True, reason="production model", team_id=recsys.pk, visibility="private")
    summary = impact.gate_summary(snapshot(secret), demo_org["users"]["alice"])
    assert summary["hidden"] == [{"reason": "production model", "count": 1, "label": "1 production model"}]
    assert "secret-ranker" not in str(summary)
    outcome = evaluate(summary)
    assert outcome.blocking
    messages = [r["message"] for r in outcome.rules if not r["pass"]]
    assert "1 production model you cannot see depends on the target: it would break" in messages
    assert not any("secret-ranker" in m for m in messages)


def test_private_assets_the_requester_sees_are_counted_not_named(demo_org):
    """carol is in recsys: she may see the private deployment, but the message is read by everyone who
    may read the request, so it counts it."""
    recsys = demo_org["teams"]["recsys"]
    live = item("ranker-v3-prod", "deployment", critical=True, reason="live deployment", team_id=recsys.pk,
                visibility="private")
    summary = impact.gate_summary(snapshot(live), demo_org["users"]["carol"])
    assert summary["private"] == [{"reason": "live deployment", "count": 1, "label": "1 private live deployment"}]
    assert summary["critical"] == [] and summary["hidden"] == []
    assert evaluate(summary).blocking


def test_uncomputed_impact_fails_closed(demo_org):
    failed = RequestImpact(hops=10, error="LookupError: no lineage graph is installed")
    outcome = evaluate(impact.gate_summary(failed, demo_org["users"]["alice"]))
    assert outcome.blocking
    assert any(r["rule"] == "impact-computed" and not r["pass"] for r in outcome.rules)


def test_warn_enforcement_never_blocks(demo_org):
    """A deployment that sets PLINTH_GOVERNANCE_GATE_ENFORCEMENT {"downstream_impact": "warn"} keeps the
    explanation but lets the request through."""
    recsys = demo_org["teams"]["recsys"]
    summary = impact.gate_summary(snapshot(item("ranker", critical=True, reason="production model", team_id=recsys.pk)),
                                  demo_org["users"]["alice"])
    outcome = evaluate(summary, enforcement="warn")
    assert not outcome.passed and not outcome.blocking


@pytest.mark.parametrize(("rules", "blocking"), [
    ([{"rule": "a", "pass": False}], True),  # no severity: blocks (fail closed)
    ([{"rule": "a", "pass": False, "severity": "warn"}], False),
    ([{"rule": "a", "pass": False, "severity": "warn"}, {"rule": "b", "pass": False}], True),
    ([{"rule": "a", "pass": True}], False),
])
def test_a_gate_blocks_unless_every_failed_rule_is_a_warning(rules, blocking):
    passed = all(r["pass"] for r in rules)
    assert policy.blocks(passed=passed, enforcement="block", rules=rules) is blocking
    assert policy.blocks(passed=passed, enforcement="block", rules=rules, error="boom") is (not passed)


def test_an_unknown_severity_is_a_malformed_result():
    """A typo ("warning") must not quietly turn a blocking rule into a warning: the gate errors and blocks."""
    _, rules, error = policy._read_result("g", {"title": "G", "result": [{"rule": "a", "pass": False,
                                                                           "severity": "warning"}]})
    assert rules == [] and "unknown severity" in error


def test_item_visibility_follows_the_entity(demo_org):
    """The snapshot reads owner team and visibility from the catalog; a version goes by its model; a
    lineage node mapped to no entity is seen by everyone (the graph's rule); a ref that is gone by
    nobody but platform admins."""
    items = impact._with_visibility([
        impact.clean_item({"id": "entity:model:default:chargeback-predictor", "kind": "model",
                           "ref": "model:default/chargeback-predictor"}),
        impact.clean_item({"id": "version:model:default:fraud-detector:3", "type": "VERSION", "kind": "version"}),
        impact.clean_item({"id": "dataset:s3://x:y", "type": "DATASET", "kind": "dataset"}),
        impact.clean_item({"id": "entity:model:default:gone", "kind": "model", "ref": "model:default/gone"}),
    ])
    fraud = demo_org["teams"]["fraud-ml"].pk
    assert [(i["team_id"], i["visibility"]) for i in items] == [
        (fraud, "private"), (fraud, "internal"), (None, "internal"), (None, "private")]
    users = demo_org["users"]
    assert [i["ref"] or i["id"] for i in impact.visible_items(users["carol"], items)] == \
        ["version:model:default:fraud-detector:3", "dataset:s3://x:y"]
    assert len(impact.visible_items(users["alice"], items)) == 3
    assert len(impact.visible_items(users["grace"], items)) == 4
    assert permissions.may_see_owned(permissions.SYSTEM, None, "private")


@pytest.mark.parametrize(("visibility", "told"), [("internal", ["carol", "dan"]), ("private", [])])
def test_owners_are_told_only_when_they_may_open_the_request(demo_org, visibility, told):
    """The downstream owners (recsys) of a fraud-ml target: told when they may read the request; about a
    private target they may not see, the link would be a 404 and the text would name it: not told."""
    from portal.governance.models import ApprovalRequest

    teams, users = demo_org["teams"], demo_org["users"]
    req = ApprovalRequest.objects.create(action="deprecate", target_ref="dataset:default/x", requester=users["alice"],
                                         owner_team=teams["fraud-ml"], visibility=visibility, state="in-review")
    snap = RequestImpact.objects.create(request=req, total=2, critical=1, items=[
        item("ranker", critical=True, reason="production model", team_id=teams["recsys"].pk),
        item("churn", team_id=teams["recsys"].pk)])
    owners = impact.owners_to_notify(req, snap)
    assert [u.username for u, _ in owners] == told
    if owners:
        assert impact.owner_message(f"#{req.pk} deprecate dataset:default/x", owners[0][1]) == (
            f"#{req.pk} deprecate dataset:default/x: 2 assets of your team depend on it, 1 of them in production "
            "or live (model:default/ranker, model:default/churn)")


def test_a_live_deployment_downstream_blocks_by_name(demo_org, tmp_path, django_capture_on_commit_callbacks):
    """dataset → MLflow run (its logged input) → model version → Deployment live in dev: the graph's
    chain from real rows (the catalog's run tables, a CD event through the deployments service), and the
    gate evaluated by the service a worker runs (tests/governance/test_impact_worker.py runs it there)."""
    from catalog.models import Entity, ExperimentRun, ModelVersion, RunInput
    from portal.deployments import services as deployments
    from portal.governance import services
    from portal.governance.models import State
    from portal.lineage import graph_sync
    from tests.governance import impact_world

    with django_capture_on_commit_callbacks(execute=True):
        impact_world.register(tmp_path / "impact")
    source = Entity.objects.get(ref="dataset:default/impact-dev-src")
    churn = Entity.objects.get(ref="model:default/impact-churn")
    run = ExperimentRun.objects.create(run_id="impact-live-run", name="train", status="FINISHED")
    RunInput.objects.create(run=run, name="train", namespace="s3://impact", dataset_name="dev.parquet", entity=source)
    ModelVersion.objects.create(entity=churn, version="1", version_number=1, status="READY", run_id=run.run_id,
                                experiment_run=run)
    with django_capture_on_commit_callbacks(execute=True):
        deployments.deployment_report(actor=demo_org["users"]["grace"], body={
            "model": "model:default/impact-churn", "version": "1", "environment": "dev", "status": "live",
            "platform": "kserve"})
    graph_sync.graph_edges_rebuild()
    with django_capture_on_commit_callbacks(execute=True):
        req = services.request_create(actor=demo_org["users"]["alice"], action="deprecate",
                                      target="dataset:default/impact-dev-src")
    req = services.request_evaluate_gates(request_id=req.pk)
    assert req.state == State.BLOCKED
    assert "live deployment deployment:default/impact-churn-v1-dev (team recsys) depends on the target" in req.gate_error
    snapshot = RequestImpact.objects.get(request=req)
    assert snapshot.items[0]["kind"] == "deployment" and snapshot.items[0]["reason"] == "live deployment"
