"""`manage.py techdocs bench` prints one JSON line and cleans up after itself."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

from catalog.models import Entity


@pytest.mark.django_db
def test_bench_prints_one_json_line():
    out = StringIO()
    call_command("techdocs", "bench", "--pages", "30", "--requests", "20", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["pages"] == 30 and result["build_status"] == "ok" and result["http_statuses"] == [200]
    assert result["build_seconds"] > 0 and result["serve_p95_ms"] > 0
    assert not Entity.objects.filter(name__startswith="techdocs-bench-").exists()


@pytest.mark.django_db
def test_export_openapi_check(tmp_path):
    target = tmp_path / "openapi.yaml"
    call_command("techdocs", "export-openapi", "--output", str(target), stdout=StringIO())
    out = StringIO()
    call_command("techdocs", "export-openapi", "--output", str(target), "--check", stdout=out)
    assert "up to date" in out.getvalue()
    target.write_text("openapi: 3.0.3\n")
    with pytest.raises(SystemExit):
        call_command("techdocs", "export-openapi", "--output", str(target), "--check", stdout=StringIO(),
                     stderr=StringIO())
