"""The FOCUS benchmark keeps working at a small size: every generated row imported (through the
read-ahead thread and the multi-row writer), allocated, the pages timed, the rows removed afterwards."""

from __future__ import annotations

import pytest

from portal.costs import bench
from portal.costs.models import CostLine, Provider

pytestmark = pytest.mark.django_db


def test_a_small_bench_imports_every_row_and_cleans_up():
    out = bench.run(5_000)  # more than two of the SQLite writer's statements, and a remainder
    assert out["rows"] == 5_000 and out["rows_per_s"] > 0
    assert out["allocation_rows"] > 0 and out["overview_p95_ms"] > 0
    assert not Provider.objects.filter(name="bench").exists() and not CostLine.objects.exists()
