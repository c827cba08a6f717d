"""Demo series for `make run`: nine weeks of made-up serving metrics for the demo organisation's SLOs
(catalog/demo/*/slo*.yaml), written as OpenMetrics and turned into Prometheus TSDB blocks with
`promtool tsdb create-blocks-from openmetrics` — the way tests/slo/conftest.py loads its known series.

`manage.py devstack` calls `ensure_blocks()` before it starts Debian's `prometheus` over the folder. The
blocks are built once and reused while they are fresh: the series run from 63 days before the moment
they were generated (the *anchor*) to a day after it, so a stack started up to `REUSE_HOURS` later still
has "now" inside the data. Older (or made by another `VERSION` of this module) they are built again.

What the series say, relative to the anchor (per minute; sampled every minute for the last four days and
the day after, every five minutes before — enough for `increase` over 5m and the 5-minute slices):

* **fraud-detector** (`model_predictions_total{model="fraud-detector",outcome="ok|error"}`): about 50
  scores a minute with a daily cycle; 0.2 % errors until three days ago, 1.4 % since, 2.2 % in the last
  six hours — its 99.5 % availability SLO is **burning** (burn rate about 3 over 1d/3d, 4.4 over 1h/6h: the
  ticket alerts hold, the page ones do not) with about a third of its 28-day budget left. Its latency
  histogram (`model_prediction_seconds_bucket`) keeps p99 under 250 ms except for a slow slice now and then,
  never in the twelve hours before the anchor or after it: the short burn windows (1h, 6h) stay the
  availability SLO's, whatever the hour the series are made.
* **fraud-scoring-service** (`http_requests_total{job="fraud-scoring",code="200|500"}`): 0.03 % errors
  against a 99.9 % target — met, about 70 % of the budget left.
* **product-ranker** (`model_predictions_total{model="product-ranker",…}`): 0.1 % errors against 99 %.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

VERSION = 4  # bumped whenever the series change: blocks of another version are built again
DAY = 86400
HISTORY_DAYS = 63  # the last complete month is whole on any day (its predictions: the cost per 1,000)
FUTURE_DAYS = 1
FINE_DAYS = 4  # sampled every minute over the last FINE_DAYS (and the future); every 5 minutes before
REUSE_HOURS = 12
BUCKETS = ("0.05", "0.1", "0.25", "0.5", "+Inf")
STAMP = "demo-series.json"


@dataclass(frozen=True)
class Blocks:
    """Where the blocks are, when the series were anchored, and whether they were built just now."""

    data_dir: Path
    anchor: datetime
    built: bool
    seconds: float = 0.0


def _grid(anchor: int) -> Iterator[int]:
    start, fine = anchor - HISTORY_DAYS * DAY, anchor - FINE_DAYS * DAY
    fine -= fine % 300
    yield from range(start - start % 300, fine, 300)
    yield from range(fine, anchor + FUTURE_DAYS * DAY + 1, 60)


def _per_minute(ts: int, base: float) -> float:
    """Traffic with a daily cycle: lowest around 04:00 UTC, highest around 16:00."""
    hour = (ts % DAY) / 3600
    return base * (1 + 0.5 * math.sin((hour - 10) / 24 * 2 * math.pi))


def _fraud_error_rate(age: int) -> float:
    """The error fraction `age` seconds before the anchor (negative: after it)."""
    if age < 6 * 3600:
        return 0.022
    if age < 3 * DAY:
        return 0.014
    return 0.002


def _slow_fraction(ts: int, age: int) -> float:
    """Share of scores slower than 250 ms: 0.3 %, but 3 % in one 5-minute slice every 18 hours (0.46 %
    of the slices: about half of a 99 % objective's monthly budget) until twelve hours before the anchor."""
    return 0.03 if age > 12 * 3600 and (ts // 300) % 216 == 7 else 0.003


def openmetrics(anchor: datetime) -> Iterator[str]:
    """The demo series as OpenMetrics lines (counters accumulate from zero at the first sample)."""
    end = int(anchor.timestamp())
    points = list(_grid(end))
    yield "# TYPE model_predictions counter"
    for model, base, rate in (("fraud-detector", 50.0, _fraud_error_rate),
                              ("product-ranker", 120.0, lambda age: 0.001)):
        ok = err = 0.0
        lines_ok, lines_err = [], []
        for prev, ts in zip([points[0], *points], points, strict=False):
            n = _per_minute(ts, base) * (ts - prev) / 60
            bad = n * rate(end - ts)
            ok, err = ok + n - bad, err + bad
            lines_ok.append(f'model_predictions_total{{model="{model}",outcome="ok"}} {ok:.3f} {ts}')
            lines_err.append(f'model_predictions_total{{model="{model}",outcome="error"}} {err:.3f} {ts}')
        yield from lines_ok
        yield from lines_err
    yield "# TYPE http_requests counter"
    counts = {"200": 0.0, "500": 0.0}
    lines: dict[str, list[str]] = {"200": [], "500": []}
    for prev, ts in zip([points[0], *points], points, strict=False):
        n = _per_minute(ts, 80.0) * (ts - prev) / 60
        counts["500"] += n * 0.0003
        counts["200"] += n * 0.9997
        for code in counts:
            lines[code].append(f'http_requests_total{{job="fraud-scoring",code="{code}"}} {counts[code]:.3f} {ts}')
    yield from lines["200"]
    yield from lines["500"]
    # A histogram's buckets as plain series (the OpenMetrics `unknown` type): histogram_quantile reads them.
    yield "# TYPE model_prediction_seconds_bucket unknown"
    shares = {"0.05": 0.70, "0.1": 0.93, "0.25": None, "0.5": None, "+Inf": 1.0}
    totals = dict.fromkeys(BUCKETS, 0.0)
    out: dict[str, list[str]] = {le: [] for le in BUCKETS}
    for prev, ts in zip([points[0], *points], points, strict=False):
        n = _per_minute(ts, 50.0) * (ts - prev) / 60
        slow = _slow_fraction(ts, end - ts)
        below = {**shares, "0.25": 1 - slow, "0.5": 1 - slow / 3}
        for le in BUCKETS:
            totals[le] += n * below[le]
            out[le].append(f'model_prediction_seconds_bucket{{model="fraud-detector",le="{le}"}} {totals[le]:.3f} {ts}')
    for le in BUCKETS:
        yield from out[le]
    yield "# EOF"


def _stamp(home: Path) -> dict:
    try:
        return json.loads((home / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def ensure_blocks(home: Path, *, now: datetime | None = None, promtool: str | None = None) -> Blocks:
    """TSDB blocks of the demo series under `home`/data: the ones there when fresh, else built now."""
    import time

    now = now or datetime.now(UTC)
    data = home / "data"
    stamp = _stamp(home)
    if stamp.get("version") == VERSION and data.is_dir():
        anchor = datetime.fromtimestamp(stamp.get("anchor", 0), UTC)
        if 0 <= (now - anchor).total_seconds() < REUSE_HOURS * 3600:
            return Blocks(data, anchor, built=False)
    promtool = promtool or shutil.which("promtool")
    if not promtool:
        raise FileNotFoundError("promtool not found (Debian's prometheus package: make system-deps)")
    started = time.monotonic()
    anchor = now.replace(second=0, microsecond=0)
    home.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(data, ignore_errors=True)
    (home / STAMP).unlink(missing_ok=True)
    source = home / "demo-series.om"
    with source.open("w", encoding="utf-8") as fh:
        for line in openmetrics(anchor):
            fh.write(line + "\n")
    try:
        built = subprocess.run(  # noqa: S603 (fixed argument list)
            [promtool, "tsdb", "create-blocks-from", "openmetrics", "--max-block-duration=240h",
             str(source), str(data)], capture_output=True, text=True, timeout=600, check=False)
    finally:
        source.unlink(missing_ok=True)
    if built.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise RuntimeError(f"promtool could not build the demo blocks ({built.returncode}): {built.stderr[-1000:]}")
    (home / STAMP).write_text(json.dumps({"version": VERSION, "anchor": int(anchor.timestamp())}), encoding="utf-8")
    return Blocks(data, anchor, built=True, seconds=time.monotonic() - started)


HISTORY_POINTS, HISTORY_STEP_HOURS = 12, 6  # the charts' first history: three days, every six hours
# The demo entities whose descriptors name an OpenSLO file (catalog/demo).
ENTITIES = ("model:default/fraud-detector", "component:default/fraud-scoring-service", "model:default/product-ranker")


def evaluate(*, now: datetime | None = None) -> dict:
    """Read the demo entities' OpenSLO files and evaluate them now (on PLINTH_PROMETHEUS_URL), so the
    pages have figures before beat's first pass. The first time (no evaluation stored yet) the last three
    days are evaluated too, every six hours, so the SLOs tab's charts show the budget going down."""
    from datetime import timedelta

    from django.utils import timezone

    from catalog.models import Entity

    from . import services
    from .models import Evaluation

    now = now or timezone.now()
    ids = list(Entity.objects.filter(ref__in=ENTITIES).values_list("id", flat=True))
    if not ids:
        return {"entities": 0, "file_errors": 0, "evaluated": 0, "problems": 0}
    if not Evaluation.objects.filter(slo__entity_id__in=ids).exists():
        for hours in range(HISTORY_STEP_HOURS * HISTORY_POINTS, 0, -HISTORY_STEP_HOURS):
            services.evaluate_entities(entity_ids=ids, now=now - timedelta(hours=hours))
    return services.evaluate_entities(entity_ids=ids, now=now)
