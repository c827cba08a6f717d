"""The benchmark command keeps working at a small size: both passes, the dashboards' timings, and the
generated rows removed afterwards (the full size is `manage.py scorecards bench`, docs/operations.md)."""

from __future__ import annotations

import pytest

from catalog.models import Entity
from portal.accounts.models import Team
from portal.scorecards import bench
from portal.scorecards.models import Result

pytestmark = pytest.mark.django_db


def test_a_small_bench_evaluates_twice_times_the_dashboards_and_cleans_up():
    out = bench.run(300)
    assert out["entities"] == 300 and out["cold"]["entities"] == out["warm"]["entities"] == 300
    assert out["cold"]["written"] == out["check_evaluations"] // 10  # a result per entity and scorecard
    assert out["warm"]["written"] == 0 and out["cold"]["rollup_rows"] > 0
    assert set(out["dashboards_p95_ms"]) >= {"index_member", "detail_admin", "campaign_member"}
    assert all(v > 0 for v in out["dashboards_p95_ms"].values())
    assert not Entity.objects.filter(namespace="scbench").exists()
    assert not Team.objects.filter(name__startswith="scbench-team-").exists()
    assert not Result.objects.exists()
