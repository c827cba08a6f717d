"""The governance journey in Chromium, on a real worker, Redis and MLflow: alice requests promotion of
fraud-detector v3 to champion, erin reads the policy results in her inbox and approves, the alias moves
in MLflow, and the audit chain verifies."""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from portal.accounts import demo as org_demo
from tests.conftest import start_celery_worker

from .conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
SHOTS = "test-artifacts/screenshots"


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/sign-in/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(org_demo.DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def test_request_review_approve_and_alias_moves(page, browser, live_server, worker_env, redis_url):
    from portal.governance.models import ApprovalRequest

    worker = start_celery_worker(redis_url)
    try:
        # alice, data scientist in fraud-ml, asks for v3 to become champion.
        sign_in(page, live_server, "alice")
        page.goto(f"{live_server.url}/catalog/model/default/fraud-detector/")
        page.get_by_role("link", name="Request promotion…").click()
        expect(page.get_by_label("Version")).to_have_value("3")
        page.get_by_label("Justification").fill("v3 improves AUC from 0.91 to 0.93 on the Q3 hold-out.")
        page.get_by_role("button", name="Submit for approval").click()
        page.wait_for_url(re.compile(r".*/reviews/requests/\d+/"))
        expect(page.get_by_test_id("change")).to_contain_text("v2 → v3")
        expect(page.get_by_test_id("status")).to_contain_text("In review", timeout=30_000)
        expect(page.get_by_test_id("sod-note")).to_be_visible()
        page.screenshot(path=f"{SHOTS}/governance-1-submitted.png", full_page=True)
        req = ApprovalRequest.objects.get()

        # erin, model risk reviewer, finds it in her inbox.
        reviewer = browser.new_context(viewport={"width": 1280, "height": 900})
        erin = reviewer.new_page()
        erin.set_default_timeout(10_000)
        sign_in(erin, live_server, "erin")
        nav = erin.get_by_role("link", name=re.compile(r"^Reviews"))
        expect(nav).to_contain_text("1")
        nav.click()
        expect(erin.get_by_test_id("inbox")).to_contain_text(f"#{req.pk}")
        erin.screenshot(path=f"{SHOTS}/governance-2-inbox.png", full_page=True)
        erin.get_by_test_id("inbox").get_by_role("link", name=re.compile(f"#{req.pk} ")).click()
        results = erin.get_by_test_id("policy-results")
        expect(results).to_contain_text("AUC 0.93 ≥ 0.8 required for risk tier 1")
        expect(results).to_contain_text("warning")  # PII training data without an approved grant
        expect(erin.get_by_test_id("metrics")).to_contain_text("0.91")
        erin.screenshot(path=f"{SHOTS}/governance-3-request-page.png", full_page=True)

        # Risk tier 1: Approve… opens a dialog that wants the model's name before it approves.
        erin.get_by_role("button", name="Approve…").click()
        dialog = erin.get_by_role("dialog", name=f"Approve request #{req.pk}?")
        dialog.get_by_label("Type fraud-detector to confirm").fill("fraud-detector")
        dialog.get_by_role("button", name=f"Approve #{req.pk}").click()
        expect(erin.get_by_test_id("status")).to_contain_text("Executed", timeout=60_000)
        expect(erin.get_by_test_id("history")).to_contain_text("execute")
        erin.screenshot(path=f"{SHOTS}/governance-4-executed.png", full_page=True)
        reviewer.close()

        # The alias moved in the real MLflow server, tagged with the request id.
        wait_for(
            lambda: worker_env.get_model_version_by_alias("fraud-detector", "champion").version == "3",
            what="the alias in MLflow",
        )
        tags = worker_env.get_model_version("fraud-detector", "3").tags
        assert tags["plinth.approval_request"] == str(req.pk)
        # alice sees it on the model's Approvals tab.
        page.goto(f"{live_server.url}/catalog/model/default/fraud-detector/approvals/")
        expect(page.get_by_test_id("approval-history")).to_contain_text("Executed")
        page.screenshot(path=f"{SHOTS}/governance-5-entity-approvals.png", full_page=True)
        call_command("audit", "verify")
    finally:
        worker.stop()
