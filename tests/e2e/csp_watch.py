"""Watching a Playwright page for Content-Security-Policy violations, three ways: the page's own
`securitypolicyviolation` events (an init script forwards each to the test), the browser console, and
the portal's report endpoint (its Prometheus counter, in this process: the live server is a thread)."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY

from portal.accounts import demo as org_demo

FORWARD_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__plinthCspViolation([e.effectiveDirective, e.blockedURI, e.sourceFile + ':' + e.lineNumber,
                               e.sample, document.location.pathname].join(' | '));
}, true);
"""


def reported_violations() -> float:
    """Violations the report endpoint has recorded so far (all directives)."""
    return sum(sample.value for metric in REGISTRY.collect() if metric.name == "plinth_csp_violations"
               for sample in metric.samples if sample.name == "plinth_csp_violations_total")


class CspWatch:
    def __init__(self, page) -> None:
        self.page = page
        self.events: list[str] = []
        self.console: list[str] = []
        self.errors: list[str] = []
        self.reported_at_start = reported_violations()
        page.context.expose_function("__plinthCspViolation", lambda text: self.events.append(text))
        page.add_init_script(FORWARD_VIOLATIONS)
        page.on("console", self._console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(message.text)
        elif message.type == "error" and "TypeError" in message.text:
            self.errors.append(message.text)

    def sign_in(self, live_server, username: str = "alice") -> None:
        self.page.goto(f"{live_server.url}/accounts/sign-in/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(org_demo.DEMO_PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(f"{live_server.url}/")

    def check(self, where: str) -> None:
        assert self.events == [], f"CSP violations on {where}: {self.events}"
        assert self.console == [], f"CSP messages in the console on {where}: {self.console}"
        assert self.errors == [], f"page errors on {where}: {self.errors}"

    def wait_for_reports(self, expected_new: int, timeout: float = 10.0) -> float:
        """Wait until the endpoint has recorded `expected_new` reports since the start (or the timeout)."""
        deadline = time.monotonic() + timeout
        while reported_violations() - self.reported_at_start < expected_new and time.monotonic() < deadline:
            self.page.wait_for_timeout(100)
        return reported_violations() - self.reported_at_start
