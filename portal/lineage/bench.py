"""`manage.py lineage bench`: ingest N generated OpenLineage events describing a graph of M datasets and
jobs through the API's own code path (body parsing, the spec check, `services.lineage_ingest`, observed
entities and their search documents), and report one dict: events per second of wall time and of
this process's CPU time, peak RSS and the load average (1, 5, 15 minutes; before and after). The graph
queries are timed afterwards by `graph_bench`.

Runs against the configured database: use a scratch one (PLINTH_VAR_DIR=/tmp/… or a PostgreSQL
DATABASE_URL). Never imported by the app itself."""

from __future__ import annotations

import json
import multiprocessing
import os
import resource
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from django.db import connection, connections
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


def _ingest(body: bytes, spec) -> int:
    """What `POST /api/v1/lineage` does with a body once it is authenticated: parse, check, store."""
    with events_module.collector_paused():  # as the API view does
        items, _, facts = events_module.parse_body(body)
        checked = [events_module.check(item, spec, facts) for item in items]
        services.lineage_ingest(events=checked, actor=None)
    return len(items)


def run(*, events: int, nodes: int, batch: int, clients: int = 1) -> dict:
    """Time (wall and CPU) only the server's part: generating the request bodies is the client's work
    and is left out. With `clients` > 1 the bodies are written to a scratch file first (untimed) and
    that many processes, as many web workers would, take every `clients`-th body each, at once; the
    wall time is from their common start to the last one's end. The load average is reported because
    the figures depend on it."""
    jobs = max(1, nodes // (OUTPUTS + 1))
    load_before = os.getloadavg()
    # As in production: with DEBUG on (the dev settings), Django would also log every statement.
    with override_settings(DEBUG=False):
        if clients <= 1:
            marks, cpu, rss = _one_client(generate(events, nodes, batch))
            rss_each = [rss]
        else:
            marks, cpu, rss_each = _many_clients(events, nodes, batch, clients)
    done = sum(count for _, count in marks)
    wall = marks[-1][0] if marks else 0.0
    result = {
        "benchmark": "lineage-ingest", "database": connection.vendor, "events": done, "batch": batch,
        "clients": max(1, clients),
        "seconds": round(wall, 1), "events_per_second": round(done / wall) if wall else 0,
        "cpu_seconds": round(cpu, 1), "events_per_cpu_second": round(done / cpu) if cpu else 0,
        "peak_rss_mib": round(max(rss_each)), "peak_rss_mib_per_client": [round(r) for r in rss_each],
        "load_average": [round(x, 2) for x in (*load_before, *os.getloadavg())],
        "nodes": Node.objects.count(), "edges": Edge.objects.count(),
        "column_edges": ColumnEdge.objects.count(), "runs": Run.objects.count(),
        "stored_events": Event.objects.count(),
    }
    # The first pass: until every job has run once, each batch creates nodes and observed entities.
    seen = 0
    for at, count in marks:
        seen += count
        if seen >= 2 * jobs:
            result["first_pass"] = {"events": seen, "seconds": round(at, 1),
                                    "events_per_second": round(seen / at) if at else 0,
                                    "note": "every node and observed entity created in this part"}
            if done > seen and wall > at:
                result["steady_events_per_second"] = round((done - seen) / (wall - at))
            break
    return result


def _one_client(bodies) -> tuple[list[tuple[float, int]], float, float]:
    """(marks: (server seconds so far, events) per batch, CPU seconds, peak RSS MiB)."""
    spec = spec_module.load()
    marks = []
    wall = cpu = 0.0
    for body in bodies:
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        count = _ingest(body, spec)
        wall += time.perf_counter() - wall_start
        cpu += time.process_time() - cpu_start
        marks.append((wall, count))
    return marks, cpu, _rss_mib()


def _many_clients(events: int, nodes: int, batch: int, clients: int):
    with tempfile.TemporaryFile() as spool:
        spans = []
        for body in generate(events, nodes, batch):
            spans.append((spool.tell(), len(body)))
            spool.write(body)
        spool.flush()
        connections.close_all()  # each process opens its own connection
        context = multiprocessing.get_context("fork")
        start, results = context.Event(), context.Queue()
        workers = [context.Process(target=_client, args=(spool, spans[k::clients], start, results))
                   for k in range(clients)]
        for worker in workers:
            worker.start()
        began = time.perf_counter()
        start.set()
        reports = [results.get() for _ in workers]
        for worker in workers:
            worker.join()
    failed = [r["error"] for r in reports if "error" in r]
    if failed:
        raise RuntimeError(f"a bench client failed: {failed[0]}")
    marks = sorted((at - began, count) for r in reports for at, count in r["marks"])
    return marks, sum(r["cpu"] for r in reports), [r["rss"] for r in reports]


def _client(spool, spans, start, results) -> None:
    """One client process: its bodies, in order, through the API's code path; absolute end times."""
    try:
        connections.close_all()
        spec = spec_module.load()
        start.wait()
        marks = []
        cpu_start = time.process_time()
        for offset, length in spans:
            body = os.pread(spool.fileno(), length, offset)
            count = _ingest(body, spec)
            marks.append((time.perf_counter(), count))
        results.put({"marks": marks, "cpu": time.process_time() - cpu_start, "rss": _rss_mib()})
    except Exception as exc:  # reported to the parent, which fails the run
        results.put({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        connections.close_all()
