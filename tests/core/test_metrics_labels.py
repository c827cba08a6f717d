"""The request metrics' labels are a fixed set, whatever a client sends: every label value is a series
Prometheus keeps (and /metrics lists) for the life of the process, and anyone, signed in or not, can
send any method and any path. A made-up method is counted as "other"; a path no URL pattern matches
as the route "unmatched"."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.core import metrics

pytestmark = pytest.mark.django_db


def _series() -> list[dict[str, str]]:
    return [sample.labels for family in metrics.REQUESTS.collect() for sample in family.samples
            if sample.name == "plinth_http_requests_total"]


def test_made_up_methods_are_counted_as_other_and_add_no_series():
    client = Client()
    for method, path in [("X00000", "/healthz"), ("BREW0", "/no-such-page/"), ("GET", "/metrics")]:
        client.generic(method, path)  # every series the loop below could add, once
    before = client.get("/metrics").content.count(b"\n")
    for i in range(1, 60):
        client.generic(f"X{i:05d}", "/healthz")
        client.generic(f"BREW{i}", f"/no-such-page-{i}/")
    after = client.get("/metrics").content
    assert b"X000" not in after and b"BREW" not in after
    assert after.count(b"\n") == before
    assert {s["method"] for s in _series()} <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    assert any(s == {"method": "other", "route": "core:healthz", "status": "405"} for s in _series())


def test_the_portals_own_methods_keep_their_names():
    client = Client()
    client.get("/healthz")
    client.head("/healthz")
    client.options("/healthz")
    methods = {s["method"] for s in _series() if s["route"] == "core:healthz"}
    assert {"GET", "HEAD", "OPTIONS"} <= methods


def test_paths_no_pattern_matches_are_one_route():
    client = Client()
    for i in range(40):
        client.get(f"/made-up-{i}/path/")
        client.get(f"/api/v1/made-up-{i}")
    routes = {s["route"] for s in _series()}
    assert not any("made-up" in route for route in routes), routes
    assert "unmatched" in routes
    assert b"made-up" not in client.get("/metrics").content
