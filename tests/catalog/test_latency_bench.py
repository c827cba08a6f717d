"""`manage.py catalog bench --latency` prints one JSON line with every group against the floor, and
cleans up after itself. (In-process only here: a gunicorn would not see the test database.)"""

import json
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from catalog.models import Entity

pytestmark = pytest.mark.django_db(transaction=True)


def test_latency_bench_prints_one_json_line():
    out = StringIO()
    call_command("catalog", "bench", "--latency", "--entities", "400", "--rounds", "2", "--no-http", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["entities_stored"] == 400 and "http" not in result
    groups = result["in_process"]
    assert set(groups) == {"floor", "healthz", "by_name", "list", "facets"}
    assert groups["floor"]["x_floor"] == 1.0 and groups["floor"]["max_queries"] == 1
    assert groups["by_name"]["n"] == 2 * result["urls"]["by_name"] and result["urls"]["by_name"] >= 2
    assert all(g["p50_ms"] > 0 and g["cpu_ms"] >= 0 for g in groups.values())
    # token + roles + entity + relations: the by-name read's statements
    assert groups["by_name"]["max_queries"] <= 4
    parts = result["breakdown"]["by_name"]
    assert parts["entity_query"]["wall_ms"] > 0 and parts["relations"]["wall_ms"] > 0
    assert parts["request"]["wall_ms"] >= parts["drf"]["wall_ms"] >= parts["token_check"]["wall_ms"]
    assert set(result["in_process_targets"]) >= {"by_name_within_3x", "list_within_5x", "facets_within_5x"}
    assert not Entity.objects.filter(namespace="bench").exists()
    assert not get_user_model().objects.filter(username="bench-latency").exists()
