"""A real Prometheus over known series, for the whole SLO test session.

The series are written as OpenMetrics, turned into TSDB blocks by `promtool tsdb create-blocks-from
openmetrics`, and served by `prometheus` (Debian's package; `make system-deps`) on a free loopback port.
Every sample lies on a 5-minute grid ending at NOW, so `x - x offset <window>` is exact for every burn
window, and the numbers the tests expect are worked out by hand in the tests themselves.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.services import ServiceError, _spawn, _wait_ready, free_port

NOW = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)  # the tests evaluate "now" here: 12:30, half past an hour
STEP = 300  # seconds between samples
DAY = 86400


def _checkout(t: int) -> tuple[float, float]:
    """Requests and errors of the 5-minute interval ending `t` seconds before NOW (t = 0 is the last one).

    In the 28 days before NOW: 10,000 requests, 30 errors. The last 5 minutes: 10 requests, 2 errors;
    the 55 minutes before: 10 requests and 2 errors per interval (110, 22); the 5 hours before: 10
    requests per interval, no errors (600); before that 1 request per interval, and at 10 days ago one
    interval with 1,288 more requests and 6 errors (9,280 and 6 in the rest of the 28 days)."""
    if t < 3600:  # the last hour: 12 intervals, 2 errors in each
        return 10, 2
    if t < 6 * 3600:
        return 10, 0
    if t == 10 * DAY:
        return 1 + 1288, 6
    return 1, 0


def _search(t: int) -> tuple[float, float]:
    """Search: 10 requests per interval, and 1 error per interval (10 %) in the hours ending 03:00,
    07:00 and 11:00 on NOW's day; data for the last two days only."""
    at = NOW - timedelta(seconds=t)
    # The interval ending `at` (hh:05 … (hh+1):00) belongs to the hour slice ending (hh+1):00.
    hour_end = at if at.minute == 0 else at.replace(minute=0) + timedelta(hours=1)
    bad = hour_end.date() == NOW.date() and hour_end.hour in {3, 7, 11}
    return 10, 1 if bad else 0


def _series(lines: list[str], family: str, labels: str, values: list[tuple[int, float]]) -> None:
    for ts, value in values:
        lines.append(f"{family}_total{{{labels}}} {value:g} {ts}")


def openmetrics() -> str:
    """The whole data set as OpenMetrics text."""
    end = int(NOW.timestamp())
    lines = ["# TYPE http_requests counter"]
    for code, pick in (("200", lambda r, e: r - e), ("500", lambda r, e: e)):
        count, values = 0.0, []
        for ts in range(end - 29 * DAY, end + 1, STEP):
            if ts > end - 29 * DAY:
                count += pick(*_checkout(end - ts))
            values.append((ts, count))
        _series(lines, "http_requests", f'service="checkout",code="{code}"', values)
    lines.append("# TYPE search_requests counter")
    for code, pick in (("200", lambda r, e: r - e), ("500", lambda r, e: e)):
        count, values = 0.0, []
        for ts in range(end - 2 * DAY, end + 1, STEP):
            if ts > end - 2 * DAY:
                count += pick(*_search(end - ts))
            values.append((ts, count))
        _series(lines, "search_requests", f'service="search",code="{code}"', values)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def start_prometheus(workdir: Path, data: Path):
    binary = shutil.which("prometheus")
    if not binary:
        raise ServiceError("prometheus not found (run `make system-deps`: Debian's prometheus package)")
    port = free_port()
    config = workdir / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n", encoding="utf-8")
    cmd = [binary, f"--config.file={config}", f"--storage.tsdb.path={data}", "--storage.tsdb.retention.time=100y",
           f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"]
    service = _spawn("prometheus", cmd, workdir, f"http://127.0.0.1:{port}")

    def probe() -> bool:
        with urllib.request.urlopen(f"{service.url}/-/ready", timeout=1) as resp:  # noqa: S310 (loopback)
            return resp.status == 200

    return service, probe


@contextmanager
def _service_dir(name: str) -> Iterator[Path]:
    """A work folder for a server that lives the whole session, outside pytest's base folder: Prometheus
    compacts its blocks whenever it likes, and tests that assert "no file written anywhere" compare
    snapshots of the base folder."""
    workdir = Path(tempfile.mkdtemp(prefix=f"plinth-{name}-"))
    try:
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def prometheus_url() -> Iterator[str]:
    """A real Prometheus serving the series above (started once per session, stopped at its end)."""
    promtool = shutil.which("promtool")
    if not promtool:
        raise ServiceError("promtool not found (run `make system-deps`: Debian's prometheus package)")
    with _service_dir("prometheus") as workdir:
        source = workdir / "series.om"
        source.write_text(openmetrics(), encoding="utf-8")
        data = workdir / "data"
        built = subprocess.run(  # noqa: S603 (fixed argument list)
            [promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=744h", str(source), str(data)],
            capture_output=True, text=True, timeout=300, check=False)
        if built.returncode != 0:
            raise ServiceError(f"promtool could not build the blocks ({built.returncode}):\n{built.stderr[-2000:]}")
        service, probe = start_prometheus(workdir, data)
        try:
            _wait_ready([(service, probe, 60.0)])
            yield service.url
        finally:
            service.stop()


@pytest.fixture
def prometheus(prometheus_url, settings) -> str:
    settings.PLINTH_PROMETHEUS_URL = prometheus_url
    return prometheus_url


CHECKOUT_SLO = """apiVersion: openslo/v1
kind: SLO
metadata:
  name: checkout-availability
  displayName: Checkout availability
spec:
  description: Checkout answers without a server error.
  service: checkout
  indicator:
    metadata:
      name: checkout-errors
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            type: Prometheus
            spec:
              query: sum(http_requests_total{service="checkout",code="500"}) - sum(http_requests_total{service="checkout",code="500"} offset {{.window}})
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(http_requests_total{service="checkout"}) - sum(http_requests_total{service="checkout"} offset {{.window}})
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: 99 % of requests
      target: 0.99
"""

SEARCH_SLO = """apiVersion: openslo/v1
kind: SLI
metadata:
  name: search-ratio
spec:
  ratioMetric:
    counter: true
    bad:
      metricSource:
        type: Prometheus
        spec:
          query: sum(search_requests_total{code="500"}) - sum(search_requests_total{code="500"} offset {{.window}})
    total:
      metricSource:
        type: Prometheus
        spec:
          query: sum(search_requests_total) - sum(search_requests_total offset {{.window}})
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: search-hours
spec:
  indicatorRef: search-ratio
  timeWindow:
    - duration: 1d
      isRolling: true
  budgetingMethod: Timeslices
  objectives:
    - target: 0.9
      timeSliceTarget: 0.95
      timeSliceWindow: 1h
"""

DESCRIPTOR = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  annotations:
    plinth.dev/openslo: {path}
{extra}spec:
  type: service
  lifecycle: production
  owner: fraud-ml
"""


def register(folder: Path, name: str, slo_text: str | None, *, path: str = "slo.yaml", extra: str = ""):
    """A component `name` in `folder` whose annotation names `path`, with `slo_text` written there;
    registered as a file location. Returns the entity."""
    from catalog import services as catalog_services
    from catalog.models import Entity

    folder.mkdir(parents=True, exist_ok=True)
    if slo_text is not None:
        (folder / path).write_text(slo_text, encoding="utf-8")
    descriptor = folder / "catalog-info.yaml"
    descriptor.write_text(DESCRIPTOR.format(name=name, path=path, extra=extra), encoding="utf-8")
    catalog_services.location_register(target=str(descriptor), actor=None, file_roots=None)
    return Entity.objects.get(ref=f"component:default/{name}")


@pytest.fixture(scope="session")
def demo_prometheus_url() -> Iterator[str]:
    """A real Prometheus over the demo's series (portal/slo/demo.py, as `make run` starts it), anchored
    at the session's start."""
    from portal.slo import demo as slo_demo

    with _service_dir("demo-prometheus") as workdir:
        blocks = slo_demo.ensure_blocks(workdir)
        service, probe = start_prometheus(workdir, blocks.data_dir)
        try:
            _wait_ready([(service, probe, 60.0)])
            yield service.url
        finally:
            service.stop()
