"""The API fuzzed from its own schema: every operation of `/api/schema/` on a live server, with a real
token, positive and negative data, stateful sequences along the schema's links. No answer may be a
server error, and every answer must be what the schema documents (status code, content type, body).

`make test` runs a bounded pass (PLINTH_FUZZ_EXAMPLES, default 10 random cases per operation) on SQLite
and a smaller one on PostgreSQL; `make fuzz` runs a long one. See docs/security.md, "API fuzzing"."""

from __future__ import annotations

import logging
import os

import pytest

from tests.api import fuzzing
from tests.api.seed import seed

EXAMPLES = int(os.environ.get("PLINTH_FUZZ_EXAMPLES", "10"))
SEED = int(os.environ.get("PLINTH_FUZZ_SEED", "20261202"))
# The work is bounded by the case counts; the suite's 300 s guard is for hangs, and a busy machine can take
# longer than that over ~1,300 requests. A long run (`make fuzz`) has no limit.
TIMEOUT = 900 if EXAMPLES <= 30 else 0
# The minimum a run must reach, so that a schema or seed change that quietly hides operations fails.
OPERATIONS = 30


@pytest.fixture
def world(live_server, tmp_path):
    # Thousands of requests: their access-log lines would bury a failure's report.
    access = logging.getLogger("plinth.access")
    level = access.level
    access.setLevel(logging.WARNING)
    try:
        yield seed(tmp_path / "repos")
    finally:
        access.setLevel(level)


def fuzz(world, live_server, examples: int) -> fuzzing.Report:
    schema = fuzzing.load_schema(base_url=live_server.url, token=world.token, examples=examples, seed=SEED,
                                 world=world)
    report = fuzzing.run(schema)
    print(f"\nAPI fuzzing (seed {SEED}, {examples} examples): {report.summary()}, {world.restored} re-seeds\n"
          f"{report.status_table()}")
    assert not report.failed, f"{report.summary()}\n{report.failure_text()}"
    assert len(report.operations) >= OPERATIONS, sorted(report.operations)
    assert report.stateful_links > 0 and report.cases_by_phase["stateful"] > 0, report.summary()
    return report


@pytest.mark.timeout(TIMEOUT)
def test_api_conforms_to_its_schema(world, live_server):
    fuzz(world, live_server, EXAMPLES)


@pytest.mark.prod_smoke
@pytest.mark.timeout(TIMEOUT)
def test_api_conforms_to_its_schema_on_postgresql(world, live_server):
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("DATABASE_URL is not set; `make test` runs this against PostgreSQL")
    fuzz(world, live_server, max(EXAMPLES // 3, 3))
