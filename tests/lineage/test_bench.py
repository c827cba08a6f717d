"""`manage.py lineage bench` keeps working at a small size, with one client and with two processes
ingesting at once (the full size and its figures: docs/lineage-performance.md)."""

from __future__ import annotations

import pytest

from portal.lineage import bench, graph_bench
from portal.lineage.models import Event, Node, Run

pytestmark = pytest.mark.django_db(transaction=True)  # the clients are other processes: they see commits


@pytest.mark.parametrize("clients", [1, 2])
def test_a_small_bench_stores_every_event_once_and_times_the_graph(clients):
    out = bench.run(events=600, nodes=50, batch=100, clients=clients)
    assert out["events"] == out["stored_events"] == Event.objects.count() == 600
    assert out["clients"] == clients and len(out["peak_rss_mib_per_client"]) == clients
    assert out["nodes"] == Node.objects.filter(type__in=["dataset", "job"]).count() == 50
    assert out["runs"] == Run.objects.count() == 300 and Run.objects.filter(state="COMPLETE").count() == 300
    assert out["first_pass"]["events"] >= 20 and out["events_per_second"] > 0
    graph = graph_bench.run(queries=20)
    assert graph["graph_depth5"]["nodes_returned_median"] > 1
    assert graph["ratio_graph_to_bare_sql_with_names"]["median_ms"] > 0


def test_the_bench_without_the_spec_stops_at_once_naming_the_variable(settings, tmp_path):
    """Before generating a body or starting a database (the clients used to fail one by one)."""
    from django.core.management import CommandError, call_command

    settings.PLINTH_OPENLINEAGE_SPEC_DIR = str(tmp_path / "nowhere")
    with pytest.raises(CommandError, match="PLINTH_OPENLINEAGE_SPEC_DIR.*copy of the spec folder"):
        call_command("lineage", "bench", "--events", "10", "--nodes", "10", "--database", "postgres")
    assert Event.objects.count() == 0
