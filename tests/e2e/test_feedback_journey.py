"""The feedback loop in Chromium with a real Celery worker: a data scientist (dan) says a page of the
portal's own docs was not useful and why; the worker notifies the owning team (platform); its maintainer
opens the notification, answers and sets "planned"; the worker notifies dan, who reads the answer under
My feedback and finds the item on the roadmap. Screenshots (desktop and phone) in
test-artifacts/screenshots/feedback/; axe-core finds nothing serious or critical on the pages at either
size."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from catalog import demo as catalog_demo
from catalog.models import Entity
from portal.accounts import demo as org_demo
from portal.accounts.models import Membership, Role
from portal.feedback.models import FeedbackItem
from portal.governance.models import Notification
from portal.techdocs import services as techdocs
from tests.e2e.test_newcomer_ui import AXE, DESKTOP, PHONE, axe_violations, new_page, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]
SHOTS = Path("test-artifacts/screenshots/feedback")
COMMENT = "The **register** step does not say which token scope I need.\n\n<script>alert('x')</script>"


def wait_for(predicate, worker, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError("timed out; worker log:\n" + "\n".join(worker.log.splitlines()[-40:]))


@pytest.fixture
def org(transactional_db):
    org = org_demo.load_org()
    catalog_demo.load_catalog()
    techdocs.entity_docs_build(entity=Entity.objects.select_related("location").get(ref="component:default/plinth"))
    from django.contrib.auth import get_user_model

    pat = get_user_model().objects.create_user("pat", email="pat@example.com", password=org_demo.DEMO_PASSWORD,
                                               first_name="Pat", last_name="Quinn")
    Membership.objects.create(user=pat, team=org["teams"]["platform"], role=Role.MAINTAINER)
    return org


def check_page(page, name: str, size: str, problems: list[str]) -> None:
    if size == "phone":
        widths = page.evaluate("() => [document.scrollingElement.scrollWidth, window.innerWidth]")
        if widths[0] > widths[1]:
            problems.append(f"{name} at 390 px scrolls sideways: {widths[0]} > {widths[1]}")
    if AXE.exists():
        problems += [f"{name} at {size}: {v}" for v in axe_violations(page)]
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar stays at the top of a full-page shot
    page.screenshot(path=str(SHOTS / f"{name}-{size}.png"), full_page=True)


def test_a_data_scientist_gives_feedback_on_a_docs_page_and_the_owners_answer(
        celery_worker_process, browser, live_server, org):
    # The worker first: it points this process's Celery app at the test Redis before anything publishes.
    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    url = live_server.url

    # dan: "Was this page useful?" at the foot of a docs page; "No", with a comment (htmx: no reload).
    page = new_page(browser, DESKTOP)
    sign_in(page, live_server, "dan")
    page.goto(f"{url}/docs/component/default/plinth/")
    form = page.get_by_test_id("feedback-useful")
    expect(form.get_by_role("heading", name="Was this page useful?")).to_be_visible()
    form.get_by_label("Comment").fill(COMMENT)
    page.screenshot(path=str(SHOTS / "1-docs-before-desktop.png"), full_page=True)
    form.get_by_role("button", name="No").click()
    expect(page.get_by_test_id("feedback-state")).to_contain_text("Thank you, saved.")
    expect(page.get_by_role("button", name="No")).to_have_attribute("aria-pressed", "true")
    check_page(page, "2-docs-saved", "desktop", problems)
    item = FeedbackItem.objects.get(author__username="dan")
    assert item.kind == "docs" and item.owner_team.name == "platform" and item.docs_path == ""

    # The worker tells the platform team's maintainer (and admin); pat opens it from the inbox.
    wait_for(lambda: Notification.objects.filter(user__username="pat", kind="feedback-new").exists(),
             celery_worker_process)
    assert Notification.objects.filter(user__username="grace", kind="feedback-new").exists()
    owner = new_page(browser, DESKTOP)
    sign_in(owner, live_server, "pat")
    owner.goto(f"{url}/reviews/")
    owner.get_by_role("link", name="New feedback for platform").click()
    owner.wait_for_url(f"**/insights/feedback/{item.pk}/")
    comment = owner.get_by_test_id("feedback-comment")
    expect(comment.locator("strong")).to_have_text("register")
    assert "<script>" not in owner.content().split('data-testid="feedback-comment"')[1].split("</div>")[0]
    owner.get_by_label("Status").select_option("planned")
    owner.get_by_role("textbox", name="Answer").fill("Good catch: the guide gets a *Scopes* section this sprint.")
    check_page(owner, "3-owner-answering", "desktop", problems)
    owner.get_by_role("button", name="Save answer").click()
    expect(owner.get_by_test_id("feedback-status")).to_have_text("Planned")
    owner.goto(f"{url}/insights/feedback/")
    expect(owner.get_by_test_id("team-feedback")).to_contain_text("Not useful")
    check_page(owner, "4-owner-list", "desktop", problems)
    owner.context.close()

    # dan is told, and reads the answer under My feedback; the item is on the roadmap.
    wait_for(lambda: Notification.objects.filter(user__username="dan", kind="feedback-answered").exists(),
             celery_worker_process)
    page.goto(f"{url}/reviews/")
    page.get_by_role("link", name="Your feedback is planned").click()
    expect(page.get_by_test_id("feedback-answer")).to_contain_text("Scopes section this sprint")
    expect(page.get_by_test_id("feedback-answer").locator("em")).to_have_text("Scopes")
    check_page(page, "5-author-sees-answer", "desktop", problems)
    page.goto(f"{url}/insights/feedback/")
    expect(page.get_by_test_id("my-feedback")).to_contain_text("Planned")
    check_page(page, "6-my-feedback", "desktop", problems)
    page.goto(f"{url}/insights/roadmap/")
    expect(page.get_by_test_id("roadmap-row")).to_have_count(1)
    check_page(page, "7-roadmap", "desktop", problems)
    page.context.close()

    # Another team votes from the roadmap with the keyboard; the phone-sized pages.
    voter = new_page(browser, PHONE)
    sign_in(voter, live_server, "alice")
    voter.goto(f"{url}/insights/roadmap/")
    button = voter.get_by_role("button", name=f"Vote for #{item.pk} (0 votes)")
    button.focus()
    voter.keyboard.press("Enter")
    expect(voter.get_by_role("button", name=f"Withdraw your vote for #{item.pk} (1 vote)")).to_be_visible()
    check_page(voter, "8-roadmap", "phone", problems)
    for name, path in (("9-item", f"/insights/feedback/{item.pk}/"), ("10-new", "/insights/feedback/new/"),
                       ("11-docs", "/docs/component/default/plinth/")):
        voter.goto(url + path)
        check_page(voter, name, "phone", problems)
    voter.context.close()
    assert not problems, "\n".join(problems)
