"""The approval workflow through its services: gates, stages, quorum, separation of duties, states."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.http import Http404

from portal.core.models import AuditEvent
from portal.governance import services
from portal.governance.models import ApprovalRequest, Decision, Notification, PolicyResult, State

pytestmark = pytest.mark.django_db

PROMOTE = {
    "action": "promote-model-version",
    "target": "model:default/fraud-detector",
    "params": {"version": "3", "alias": "champion"},
    "justification": "better AUC",
}


def submit(user, **overrides):
    return services.request_create(actor=user, **{**PROMOTE, **overrides})


def test_submit_runs_gates_and_routes_tier1_to_risk_governance(fraud_versions, users, run_outbox):
    """A tier-1 promotion passes the blocking gates, warns on PII training data, and waits for risk-governance."""
    req = submit(users["alice"])
    assert req.state == State.PENDING
    assert req.change == {"alias": "champion", "from": "2", "to": "3", "model": "fraud-detector",
                          "drops": ["challenger"]}
    run_outbox()
    req.refresh_from_db()
    assert req.state == State.IN_REVIEW, req.gate_error
    results = {r.gate: r for r in PolicyResult.objects.filter(request=req)}
    assert set(results) == {
        "model_card",
        "metric_thresholds",
        "ownership",
        "champion_regression",
        "training_data",
        "features",
    }
    assert results["metric_thresholds"].passed and results["model_card"].passed
    assert not results["training_data"].passed and results["training_data"].enforcement == "warn"
    assert all(len(r.policy_hash) == 64 for r in results.values()) and len(req.policy_hash) == 64
    assert [s.name for s in req.stages.all()] == ["Model risk review"]
    # erin (risk-governance reviewer) and frank (its admin) are notified; the requester is not.
    notified = set(
        Notification.objects.filter(request=req, kind="review").values_list("user__username", flat=True)
    )
    assert notified == {"erin", "frank"}


def test_approval_by_quorum_queues_execution_and_audits_each_step(fraud_versions, users, run_outbox):
    req = submit(users["alice"])
    run_outbox()
    services.request_decide(actor=users["erin"], request_id=req.pk, decision="approve", comment="ok")
    req.refresh_from_db()
    assert req.state == State.APPROVED
    assert req.outbox.filter(key=f"req:{req.pk}:execute:0").exists()
    actions = list(
        AuditEvent.objects.filter(target=f"approval-request:{req.pk}").values_list("action", flat=True)
    )
    assert actions == ["governance.request.submit", "governance.request.gates", "governance.request.decide"]
    decision = Decision.objects.get(request=req)
    assert decision.policy_hash == req.policy_hash


def test_requester_never_approves_own_request_even_as_platform_admin(fraud_versions, users, run_outbox):
    grace = users["grace"]  # platform admin
    req = submit(grace)
    run_outbox()
    with pytest.raises(PermissionDenied, match="Separation of duties"):
        services.request_decide(actor=grace, request_id=req.pk, decision="approve")
    assert not Decision.objects.filter(request=req).exists()
    denied = AuditEvent.objects.filter(
        target=f"approval-request:{req.pk}", action="governance.request.decide"
    )
    assert denied.count() == 1 and '"outcome":"denied"' in denied.get().payload


def test_one_vote_per_person(fraud_versions, users, run_outbox, settings, tmp_path):
    req = submit(users["alice"])
    run_outbox()
    # Make the stage need two approvals so the first vote keeps it open.
    req.stages.update(quorum=2)
    services.request_decide(actor=users["erin"], request_id=req.pk, decision="approve")
    with pytest.raises(services.Conflict, match="one vote per person"):
        services.request_decide(actor=users["erin"], request_id=req.pk, decision="approve")
    services.request_decide(actor=users["frank"], request_id=req.pk, decision="approve")
    assert ApprovalRequest.objects.get(pk=req.pk).state == State.APPROVED


def test_reviewer_of_another_team_cannot_decide(fraud_versions, users, run_outbox):
    req = submit(users["alice"])
    run_outbox()
    with pytest.raises(PermissionDenied):
        services.request_decide(actor=users["carol"], request_id=req.pk, decision="approve")


def test_reject_needs_a_comment_and_closes(fraud_versions, users, run_outbox):
    req = submit(users["alice"])
    run_outbox()
    with pytest.raises(services.InvalidRequest, match="comment"):
        services.request_decide(actor=users["erin"], request_id=req.pk, decision="reject", comment="  ")
    services.request_decide(
        actor=users["erin"], request_id=req.pk, decision="reject", comment="recall too low"
    )
    with pytest.raises(services.Conflict) as closed:
        services.request_decide(actor=users["frank"], request_id=req.pk, decision="approve")
    assert closed.value.extra["state"] == State.REJECTED


def test_bad_input_changes_nothing(fraud_versions, users):
    before = (ApprovalRequest.objects.count(), AuditEvent.objects.count())
    with pytest.raises(services.InvalidRequest, match="unknown action"):
        submit(users["alice"], action="launch-rockets")
    with pytest.raises(Http404):
        submit(users["alice"], target="model:default/no-such-model")
    with pytest.raises(services.InvalidRequest, match="has no version 9"):
        submit(users["alice"], params={"version": "9", "alias": "champion"})
    with pytest.raises(services.InvalidRequest, match="reserved"):
        submit(users["alice"], params={"version": "3", "alias": "v3"})
    with pytest.raises(services.InvalidRequest, match="already holds"):
        submit(users["alice"], params={"version": "2", "alias": "champion"})
    with pytest.raises(services.InvalidRequest, match="at most"):
        submit(users["alice"], justification="x" * 5000)
    with pytest.raises(PermissionDenied):
        submit(users["heidi"])  # viewer in fraud-ml: may see, may not request
    assert (ApprovalRequest.objects.count(), AuditEvent.objects.count()) == before


def test_private_target_of_another_team_is_404(fraud_versions, users):
    with pytest.raises(Http404):
        services.request_create(
            actor=users["carol"], action="mark-production", target="model:default/chargeback-predictor"
        )


def test_duplicate_open_request_is_409(fraud_versions, users):
    first = submit(users["alice"])
    with pytest.raises(services.Conflict) as dup:
        submit(users["bob"])
    assert dup.value.extra["request_id"] == first.pk


def test_withdraw_only_by_requester_and_only_when_open(fraud_versions, users, run_outbox):
    req = submit(users["alice"])
    run_outbox()
    with pytest.raises(PermissionDenied):
        services.request_withdraw(actor=users["bob"], request_id=req.pk)
    services.request_withdraw(actor=users["alice"], request_id=req.pk)
    with pytest.raises(services.Conflict):
        services.request_withdraw(actor=users["alice"], request_id=req.pk)
    assert ApprovalRequest.objects.get(pk=req.pk).state == State.WITHDRAWN


def test_sla_reminder_escalation_and_expiry(fraud_versions, users, run_outbox):
    from datetime import timedelta

    from django.core import mail
    from django.utils import timezone

    req = submit(users["alice"])
    run_outbox()
    mail.outbox.clear()
    req.refresh_from_db()
    assert services.sla_sweep(now=req.remind_at + timedelta(seconds=1))["reminded"] == 1
    run_outbox()
    assert set(
        Notification.objects.filter(request=req, kind="reminder").values_list("user__username", flat=True)
    ) == {"erin", "frank"}
    assert services.sla_sweep(now=req.escalate_at + timedelta(seconds=1))["escalated"] == 1
    run_outbox()
    assert list(
        Notification.objects.filter(request=req, kind="escalation").values_list("user__username", flat=True)
    ) == ["frank"]  # the admin of risk-governance
    assert any("Escalated" in m.subject for m in mail.outbox)
    counts = services.sla_sweep(now=req.expires_at + timedelta(seconds=1))
    assert counts["expired"] == 1 and counts["reminded"] == counts["escalated"] == 0
    req.refresh_from_db()
    assert req.state == State.EXPIRED and req.closed_at is not None
    assert services.sla_sweep(now=timezone.now() + timedelta(days=30))["expired"] == 0


def test_a_title_with_line_breaks_still_gets_its_review_mail_out(fraud_versions, users, run_outbox):
    """Notifications name the target by its title; a title (or a person's name) with line breaks is one
    line in the message and in the e-mail's subject (a header with a line break is refused)."""
    from django.core import mail

    from catalog.models import Entity

    Entity.objects.filter(ref="model:default/fraud-detector").update(title="Fraud\r\ndetector\n v2")
    mail.outbox.clear()
    req = submit(users["alice"])
    run_outbox()
    review = Notification.objects.filter(request=req, kind="review")
    assert review.count() == 2 and all(n.emailed for n in review)
    assert {n.message for n in review} == {
        f"{users['alice'].get_full_name()} asks you to review: #{req.pk} promote Fraud detector v2 v3 to champion"}
    subjects = [m.subject for m in mail.outbox if "asks you to review" in m.subject]
    assert len(subjects) == 2 and all("\n" not in s and "Fraud detector v2 v3" in s for s in subjects)


def test_malformed_policy_fails_closed(fraud_versions, users, run_outbox, settings, tmp_path):
    """A policy that does not compile blocks the request with a clear error; it is never approved."""
    import shutil

    from portal.governance import conf

    folder = tmp_path / "policies"
    shutil.copytree(conf.APP_DIR / "policies", folder)
    (folder / "metric_thresholds.rego").write_text("package plinth.gates.metric_thresholds\nresult := [ {\n")
    settings.PLINTH_GOVERNANCE_POLICY_DIR = folder
    req = submit(users["alice"])
    run_outbox()
    req.refresh_from_db()
    assert req.state == State.BLOCKED
    assert "metric_thresholds" in req.gate_error and "does not compile" in req.gate_error
    broken = PolicyResult.objects.get(request=req, gate="metric_thresholds")
    assert not broken.passed and broken.enforcement == "block" and broken.error
    with pytest.raises(services.Conflict):
        services.request_decide(actor=users["erin"], request_id=req.pk, decision="approve")


def test_policy_using_with_is_refused_not_crashing(fraud_versions, users, run_outbox, settings, tmp_path):
    import shutil

    from portal.governance import conf

    folder = tmp_path / "policies"
    shutil.copytree(conf.APP_DIR / "policies", folder)
    path = folder / "ownership.rego"
    path.write_text(path.read_text() + "\nprobe if { result with input as {} }\n")
    settings.PLINTH_GOVERNANCE_POLICY_DIR = folder
    req = submit(users["alice"])
    run_outbox()
    req.refresh_from_db()
    assert req.state == State.BLOCKED and "`with … as` is not supported" in req.gate_error


def test_failing_policy_unit_test_is_reported(tmp_path):
    import shutil

    from django.core.management import CommandError, call_command

    from portal.governance import conf, policy

    folder = tmp_path / "policies"
    shutil.copytree(conf.APP_DIR / "policies", folder)
    (folder / "broken_test.rego").write_text(
        "package plinth.gates.broken_test\n\nimport data.plinth.gates.ownership\nimport rego.v1\n\n"
        'test_always_wrong if {\n\tcount(ownership.results({"target": {"owner": ""}})) == 99\n}\n'
    )
    outcomes = {o.name: o.passed for o in policy.run_tests(folder)}
    assert outcomes["test_always_wrong"] is False and outcomes["test_no_owner_fails"] is True
    with pytest.raises(CommandError, match="policy tests failed"), override_policy_dir(folder):
        call_command("policy", "test")


def override_policy_dir(folder):
    from django.test import override_settings

    return override_settings(PLINTH_GOVERNANCE_POLICY_DIR=folder)


def test_grant_access_request_feeds_the_training_data_gate(fraud_versions, users, run_outbox):
    grant = services.request_create(
        actor=users["alice"],
        action="grant-access",
        target="dataset:default/card-transactions-2025",
        params={"team": "fraud-ml", "purpose": "fraud model training"},
    )
    run_outbox()
    grant.refresh_from_db()
    assert [s.name for s in grant.stages.all()] == ["Data owner review", "Privacy review"]
    services.request_decide(
        actor=users["frank"], request_id=grant.pk, decision="approve"
    )  # fraud-ml reviewer
    services.request_decide(actor=users["erin"], request_id=grant.pk, decision="approve")  # risk-governance
    run_outbox()
    grant.refresh_from_db()
    assert grant.state == State.EXECUTED
    req = submit(users["alice"])
    run_outbox()
    assert PolicyResult.objects.get(request=req, gate="training_data").passed
