"""Prometheus metrics. Multi-process safe when PROMETHEUS_MULTIPROC_DIR is set (gunicorn)."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

REQUESTS = Counter(
    "plinth_http_requests_total", "HTTP requests handled", ["method", "route", "status"]
)
LATENCY = Histogram(
    "plinth_http_request_duration_seconds",
    "Time to handle an HTTP request",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

CSP_VIOLATIONS = Counter(
    "plinth_csp_violations_total", "Content-Security-Policy violations reported by browsers", ["directive"]
)
CSP_REPORTS_REFUSED = Counter(
    "plinth_csp_reports_refused_total", "CSP report bodies not recorded", ["reason"]
)

ANALYTICS_DROPPED = Counter(
    "plinth_analytics_events_dropped", "Usage analytics events dropped (buffer unavailable; docs/insights.md)"
)


# Every label value is a new series kept for the life of the process (and, multi-process, in its files):
# the client picks the method, so only the methods the portal serves are named and the rest are "other".
# The route is the URL pattern's name, "unmatched" for any path no pattern matches (middleware).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str | None) -> str:
    method = (method or "GET").upper()
    return method if method in METHODS else "other"


def observe_request(method: str | None, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method=method_label(method), route=route, status=str(status)).inc()
    LATENCY.labels(route=route).observe(seconds)


# Decided once, when the process starts (gunicorn's environment), as prometheus_client decides where
# values live: a library setting the variable later (feast.metrics does, for the whole process) must not
# switch /metrics to a folder the portal's own counters were never written to.
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or ""


def render() -> tuple[bytes, str]:
    if MULTIPROC_DIR:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST
