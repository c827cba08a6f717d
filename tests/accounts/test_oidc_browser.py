"""Single sign-on in Chromium: the sign-in page's button, the real provider's login form, the home page,
then sign-out through the provider's end-session page and back, under the portal's CSP (no violation)."""

from __future__ import annotations

import pytest

from tests.e2e.csp_watch import CspWatch

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = "test-artifacts/screenshots"


def test_single_sign_on_and_sign_out_in_the_browser(page, live_server, sso):
    csp = CspWatch(page)
    page.goto(f"{live_server.url}/catalog/")
    assert "/accounts/sign-in/" in page.url
    page.screenshot(path=f"{SHOTS}/sso-sign-in-page.png", full_page=True)
    page.get_by_role("link", name="Sign in with single sign-on").click()
    page.wait_for_url(f"{sso.issuer}/**")
    page.locator("input[name=login]").fill("ada")
    page.locator("input[name=password]").fill("any")
    page.screenshot(path=f"{SHOTS}/sso-provider-login.png", full_page=True)
    page.locator("button[type=submit]").first.click()
    page.wait_for_url(f"{live_server.url}/catalog/")
    page.goto(f"{live_server.url}/")
    assert page.get_by_role("heading", name="Welcome, Ada").is_visible()
    page.screenshot(path=f"{SHOTS}/sso-home.png", full_page=True)

    page.locator("summary", has_text="ada").click()  # the user menu
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{sso.issuer}/**")
    page.locator("button[type=submit]").first.click()  # the provider's "sign me out" confirmation
    page.wait_for_url(f"{live_server.url}/accounts/sign-in/**")
    assert page.get_by_text("You are signed out.").is_visible()
    csp.check("single sign-on and sign-out")

    # A refusal is a page of the portal's own, with a way back.
    page.goto(f"{live_server.url}/accounts/oidc/callback/?error=access_denied&error_description=User+cancelled")
    assert page.get_by_test_id("sso-error").inner_text().startswith("The identity provider refused the sign-in")
    assert page.get_by_role("link", name="Try single sign-on again").is_visible()
    page.screenshot(path=f"{SHOTS}/sso-refused.png", full_page=True)
    csp.check("the refusal page")
