"""`manage.py lineage bench`: ingest N generated OpenLineage events describing a graph of M datasets and
jobs through the API's own code path (body parsing, the spec check, `services.lineage_ingest`, observed
entities and their search documents), and report one dict: events per second of wall time and of
this process's CPU time, peak RSS and the load average (1, 5, 15 minutes; before and after). The graph
queries are timed afterwards by `graph_bench`.

Runs against the configured database: use a scratch one (PLINTH_VAR_DIR=/tmp/… or a PostgreSQL
DATABASE_URL). Never imported by the app itself."""

from __future__ import annotations

import json
import os
import resource
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import override_settings

from . import events as events_module
from . import services
from . import spec as spec_module
from .models import ColumnEdge, Edge, Event, Node, Run

PRODUCER = "https://github.com/plinth/bench"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
OUTPUTS = 4  # datasets written per job; jobs are a fifth of the nodes


def _facet(**fields) -> dict:
    return {"_producer": PRODUCER, "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json",
            **fields}


def _dataset(i: int) -> dict:
    return {"namespace": f"postgres://bench-db-{i % 7}:5432", "name": f"warehouse.bench.table_{i}"}


def _event(run_id: str, event_type: str, when: datetime, job: int, jobs: int, datasets: int) -> dict:
    """Job j reads outputs of two earlier jobs (deep chains, some fan-in) and writes its own four."""
    first = OUTPUTS * job
    inputs = [_dataset((first - OUTPUTS) % datasets), _dataset((OUTPUTS * (job - 7) + 1) % datasets)]
    outputs = [dict(_dataset(first + k)) for k in range(OUTPUTS)]
    outputs[0]["facets"] = {"schema": _facet(fields=[{"name": "id", "type": "bigint"},
                                                     {"name": "amount", "type": "numeric"}]),
                            "columnLineage": _facet(fields={"amount": {"inputFields": [
                                {**inputs[0], "field": "amount",
                                 "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}]}})}
    return {"eventType": event_type, "eventTime": when.isoformat(), "producer": PRODUCER, "schemaURL": SCHEMA_URL,
            "run": {"runId": run_id}, "job": {"namespace": "bench-scheduler", "name": f"job_{job}"},
            "inputs": inputs, "outputs": outputs}


def generate(total: int, nodes: int, batch: int) -> Iterator[bytes]:
    """Batches of events as request bodies: each run is a START and a COMPLETE."""
    jobs = max(1, nodes // (OUTPUTS + 1))
    datasets = max(1, nodes - jobs)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    pending: list[dict] = []
    run = 0
    made = 0
    while made < total:
        run_id = str(uuid.UUID(int=run + 1))
        when = start + timedelta(seconds=run)
        job = run % jobs
        pending.append(_event(run_id, "START", when, job, jobs, datasets))
        made += 1
        if made < total:
            pending.append(_event(run_id, "COMPLETE", when + timedelta(seconds=30), job, jobs, datasets))
            made += 1
        run += 1
        if len(pending) >= batch:
            yield json.dumps(pending).encode()
            pending = []
    if pending:
        yield json.dumps(pending).encode()


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(*, events: int, nodes: int, batch: int) -> dict:
    """Time (wall and this process's CPU) only the server's part: generating the request bodies is the
    client's work and is left out. The load average is reported because the figures depend on it."""
    spec = spec_module.load()
    done = 0
    wall = cpu = 0.0
    first_pass = None
    jobs = max(1, nodes // (OUTPUTS + 1))
    load_before = os.getloadavg()
    # As in production: with DEBUG on (the dev settings), Django would also log every statement.
    with override_settings(DEBUG=False):
        for body in generate(events, nodes, batch):
            wall_start, cpu_start = time.perf_counter(), time.process_time()
            with events_module.collector_paused():  # as the API view does
                items, _, facts = events_module.parse_body(body)
                checked = [events_module.check(item, spec, facts) for item in items]
                services.lineage_ingest(events=checked, actor=None)
            wall += time.perf_counter() - wall_start
            cpu += time.process_time() - cpu_start
            done += len(items)
            if first_pass is None and done >= 2 * jobs:
                first_pass = (wall, cpu, done)
    result = {
        "benchmark": "lineage-ingest", "database": connection.vendor, "events": done, "batch": batch,
        "seconds": round(wall, 1), "events_per_second": round(done / wall),
        "cpu_seconds": round(cpu, 1), "events_per_cpu_second": round(done / cpu),
        "peak_rss_mib": round(_rss_mib()), "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "nodes": Node.objects.count(), "edges": Edge.objects.count(),
        "column_edges": ColumnEdge.objects.count(), "runs": Run.objects.count(),
        "stored_events": Event.objects.count(),
    }
    if first_pass is not None:
        seconds, cpu_seconds, count = first_pass
        result["first_pass"] = {"events": count, "seconds": round(seconds, 1),
                                "events_per_second": round(count / seconds),
                                "events_per_cpu_second": round(count / cpu_seconds),
                                "note": "every node and observed entity created in this part"}
        if done > count:
            result["steady_events_per_second"] = round((done - count) / (wall - seconds))
            result["steady_events_per_cpu_second"] = round((done - count) / (cpu - cpu_seconds))
    return result
