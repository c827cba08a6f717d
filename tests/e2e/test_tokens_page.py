"""The API tokens page in a real Chromium: the new secret has a Copy button that copies it, the list shows
when each token expires, Revoke asks first (dismissed: nothing changes), and the user menu closes on
Escape with the focus back on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from portal.accounts.models import APIToken
from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path("test-artifacts/screenshots")


def test_create_copy_see_expiry_and_revoke_only_after_confirming(browser, live_server):
    UserFactory(username="tia")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    page.goto(f"{live_server.url}/accounts/sign-in/")
    page.get_by_label("Username").fill("tia")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/accounts/tokens/")
    page.get_by_label("Name").fill("ci pipeline")
    page.get_by_label("Expires").select_option(label=page.get_by_label("Expires").locator("option").nth(1).inner_text())
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_test_id("new-token").inner_text().strip()
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.get_by_role("button", name="Copied", exact=True)).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    row = page.locator("tbody tr", has_text="ci pipeline")
    expect(row.locator("td").nth(3)).to_contain_text("in ")  # the Expires column: "in 7 days"
    page.screenshot(path=str(SHOTS / "tokens-page.png"), full_page=True)

    revoke = row.get_by_role("button", name="Revoke token ci pipeline")
    page.once("dialog", lambda dialog: dialog.dismiss())
    revoke.click()
    expect(row).to_contain_text("active")
    assert APIToken.objects.get(name="ci pipeline").revoked_at is None
    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    revoke.click()
    expect(page.locator("tbody tr", has_text="ci pipeline")).to_contain_text("revoked")
    assert "Whatever uses it stops working at once" in messages[0]

    menu = page.locator("details.usermenu")
    menu.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(menu).to_have_attribute("open", "")
    page.keyboard.press("Tab")
    page.keyboard.press("Escape")
    expect(menu).not_to_have_attribute("open", "")
    assert page.evaluate("document.activeElement.closest('details.usermenu') !== null")
    context.close()
