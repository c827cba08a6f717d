"""The demo organisation's lineage (`manage.py demo lineage`, run by `make run`): a week of OpenLineage
runs of the fraud team's pipelines, sent through the ingest's own path (`events.parse_body`,
`events.check` against the spec, `services.lineage_ingest`), as a scheduler would send them.

Payment tables in PostgreSQL → a daily ETL job → the demo catalog's `card-transactions-2025` and
`chargebacks-2025` Datasets (declared by their `openlineage.io/dataset` annotations) → a feature job →
the `fraud-detector-training` Pipeline (declared by `openlineage.io/job`), whose MLflow runs
(`manage.py demo mlflow-seed`) go on to the model's versions. Each run carries the facets the lineage tab
shows: schema, column lineage, data-quality metrics, SQL, source code, ownership (the `fraud-ml` team,
so the observed tables are owned), documentation; one ETL run failed with its error message, and
the feature job's latest run is still running.

Idempotent: run ids are derived from the job and the day, so a second load the same day stores nothing;
a load on a later day adds that day's runs, as the scheduler would have."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from . import events as events_module
from . import services
from . import spec as spec_module

PRODUCER = "https://github.com/plinth/demo-scheduler"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET = "https://openlineage.io/spec/facets/{version}/{name}.json#/$defs/{name}"
DAYS = 7
JOBS_NAMESPACE = "airflow"
PAYMENTS_DB = "postgres://payments-db.internal:5432"
ML_DATA = "s3://ml-data"
OWNER = {"owners": [{"name": "team:fraud-ml", "type": "MAINTAINER"}]}
RUN_IDS = uuid.UUID("6f1f0e53-2a5c-4c4e-9d52-3f0d7f1c9a10")  # uuid5 namespace of the demo's run ids


def _facet(name: str, version: str, **fields) -> dict:
    return {"_producer": PRODUCER, "_schemaURL": FACET.format(version=version, name=name), **fields}


def _schema(*columns: tuple[str, str, str]) -> dict:
    return _facet("SchemaDatasetFacet", "1-2-0", fields=[
        {"name": name, "type": type_, **({"description": text} if text else {})} for name, type_, text in columns])


def _docs(text: str) -> dict:
    return _facet("DocumentationDatasetFacet", "1-1-0", description=text)


def _lineage(sources: dict[str, list[tuple[str, str, str]]]) -> dict:
    """{output column: [(input namespace, input name, input column)]} as a columnLineage facet."""
    return _facet("ColumnLineageDatasetFacet", "1-2-0", fields={
        column: {"inputFields": [{"namespace": ns, "name": name, "field": field,
                                  "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]}
                                 for ns, name, field in inputs]}
        for column, inputs in sources.items()})


TRANSACTIONS = {"namespace": PAYMENTS_DB, "name": "payments.public.transactions", "facets": {
    "schema": _schema(("transaction_id", "uuid", ""), ("card_id", "varchar", "tokenised card number"),
                      ("amount", "numeric(12,2)", ""), ("merchant_id", "varchar", ""),
                      ("created_at", "timestamptz", "")),
    "documentation": _docs("Every card authorisation the payment switch accepted."),
    "ownership": _facet("OwnershipDatasetFacet", "1-0-1", **OWNER)}}
MERCHANTS = {"namespace": PAYMENTS_DB, "name": "payments.public.merchants", "facets": {
    "schema": _schema(("merchant_id", "varchar", ""), ("mcc", "char(4)", "merchant category code"),
                      ("country", "char(2)", "")),
    "documentation": _docs("Merchants onboarded to the payment switch."),
    "ownership": _facet("OwnershipDatasetFacet", "1-0-1", **OWNER)}}
DISPUTES = {"namespace": PAYMENTS_DB, "name": "payments.public.disputes", "facets": {
    "schema": _schema(("transaction_id", "uuid", ""), ("opened_at", "timestamptz", ""),
                      ("outcome", "varchar", "won, lost or pending")),
    "documentation": _docs("Disputes raised by card holders, with their outcome."),
    "ownership": _facet("OwnershipDatasetFacet", "1-0-1", **OWNER)}}
# The catalog's Datasets (catalog/demo/fraud/catalog-info.yaml, by their openlineage.io/dataset annotation).
LABELLED = {"namespace": ML_DATA, "name": "fraud/transactions/2025", "facets": {
    "schema": _schema(("transaction_id", "uuid", ""), ("card_id", "varchar", ""), ("amount", "decimal", ""),
                      ("merchant_id", "varchar", ""), ("is_fraud", "boolean", "label"))}}
CHARGEBACKS = {"namespace": ML_DATA, "name": "fraud/chargebacks/2025", "facets": {
    "schema": _schema(("transaction_id", "uuid", ""), ("opened_at", "timestamptz", ""), ("outcome", "varchar", ""))}}
FEATURES = {"namespace": ML_DATA, "name": "features/card_transactions", "facets": {
    "schema": _schema(("card_id", "varchar", ""), ("amount_7d_mean", "double", "mean amount over 7 days"),
                      ("txn_count_7d", "int", "")),
    "documentation": _docs("Per-card rolling aggregates the fraud models consume."),
    "ownership": _facet("OwnershipDatasetFacet", "1-0-1", **OWNER)}}


@dataclass(frozen=True)
class Job:
    name: str
    inputs: tuple[dict, ...]
    output: dict
    minutes: int  # how long a run takes
    hour: int  # when the scheduler starts it (UTC)
    sql: str = ""
    columns: dict | None = None  # the output's column lineage
    weekday: int | None = None  # runs only on this weekday (0: Monday), else daily


JOBS = (
    Job("etl.card_transactions_daily", (TRANSACTIONS, MERCHANTS), LABELLED, 14, 1,
        sql="INSERT INTO fraud.transactions_2025 SELECT t.transaction_id, t.card_id, t.amount, t.merchant_id, "
            "d.outcome = 'lost' AS is_fraud FROM payments.public.transactions t JOIN payments.public.merchants m "
            "USING (merchant_id) LEFT JOIN payments.public.disputes d USING (transaction_id)",
        columns={"transaction_id": [(PAYMENTS_DB, TRANSACTIONS["name"], "transaction_id")],
                 "card_id": [(PAYMENTS_DB, TRANSACTIONS["name"], "card_id")],
                 "amount": [(PAYMENTS_DB, TRANSACTIONS["name"], "amount")],
                 "merchant_id": [(PAYMENTS_DB, TRANSACTIONS["name"], "merchant_id"),
                                 (PAYMENTS_DB, MERCHANTS["name"], "merchant_id")]}),
    Job("etl.chargebacks_daily", (DISPUTES,), CHARGEBACKS, 6, 1,
        sql="INSERT INTO fraud.chargebacks_2025 SELECT transaction_id, opened_at, outcome "
            "FROM payments.public.disputes WHERE outcome <> 'pending'",
        columns={"transaction_id": [(PAYMENTS_DB, DISPUTES["name"], "transaction_id")],
                 "outcome": [(PAYMENTS_DB, DISPUTES["name"], "outcome")]}),
    Job("features.card_transaction_features", (LABELLED,), FEATURES, 22, 2,
        columns={"amount_7d_mean": [(ML_DATA, LABELLED["name"], "amount")],
                 "card_id": [(ML_DATA, LABELLED["name"], "card_id")]}),
    Job("training.fraud_detector", (FEATURES, CHARGEBACKS),
        {"namespace": "s3://ml-models", "name": "fraud-detector/candidates"}, 48, 3, weekday=0),  # "0 3 * * 1"
)
FAILED = ("etl.card_transactions_daily", 3)  # (job, days ago): a run that failed, with its error
RUNNING = "features.card_transaction_features"  # its run of today has started and not ended


def _run_id(job: Job, day) -> str:
    return str(uuid.uuid5(RUN_IDS, f"{job.name}/{day.isoformat()}"))


def _event(job: Job, run_id: str, state: str, when: datetime, rows: int, failed: bool) -> dict:
    output = {key: value for key, value in job.output.items() if key != "facets"}
    facets = dict(job.output.get("facets") or {})
    if state != "START":
        if job.columns:
            facets["columnLineage"] = _lineage(job.columns)
        if not failed:
            facets["dataQualityMetrics"] = _facet("DataQualityMetricsDatasetFacet", "1-0-0", rowCount=rows,
                                                  columnMetrics={"amount": {"nullCount": 0, "min": 0.5}}
                                                  if "amount" in (job.columns or {}) else {})
    if facets:
        output["facets"] = facets
    run_facets = {}
    if failed and state == "FAIL":
        run_facets["errorMessage"] = _facet(
            "ErrorMessageRunFacet", "1-0-1", programmingLanguage="python",
            message="psycopg.OperationalError: connection to server at \"payments-db.internal\" (10.20.4.7), "
                    "port 5432 failed: timeout expired")
    job_facets = {"ownership": _facet("OwnershipJobFacet", "1-0-1", **OWNER),
                  "sourceCodeLocation": _facet("SourceCodeLocationJobFacet", "1-1-0", type="git",
                                               url="https://git.example.com/fraud/pipelines",
                                               path=f"dags/{job.name.replace('.', '/')}.py", branch="main"),
                  "documentation": _facet("DocumentationJobFacet", "1-1-0",
                                          description=f"Scheduled daily at {job.hour:02d}:00 UTC by Airflow.")}
    if job.sql:
        job_facets["sql"] = _facet("SQLJobFacet", "1-1-0", query=job.sql, dialect="postgres")
    return {"eventType": state, "eventTime": when.isoformat(), "producer": PRODUCER, "schemaURL": RUN_EVENT,
            "run": {"runId": run_id, "facets": run_facets},
            "job": {"namespace": JOBS_NAMESPACE, "name": job.name, "facets": job_facets},
            "inputs": list(job.inputs),
            "outputs": [output]}


def events(now: datetime) -> list[dict]:
    """The week's events up to `now`, oldest first: each run a START and its end (COMPLETE or FAIL), but
    today's run of RUNNING a START and a RUNNING; a run that has not started or ended by `now` is not sent."""
    out = []
    today = now.astimezone(UTC).date()
    for days_ago in range(DAYS - 1, -1, -1):
        day = today - timedelta(days=days_ago)
        for number, job in enumerate(JOBS):
            if job.weekday is not None and day.weekday() != job.weekday:
                continue
            start = datetime.combine(day, time(job.hour, 7 * number), tzinfo=UTC)
            end = start + timedelta(minutes=job.minutes + days_ago % 3)
            failed = (job.name, days_ago) == FAILED
            running = job.name == RUNNING and days_ago == 0
            if start >= now or (not running and end >= now):
                continue
            run_id = _run_id(job, day)
            rows = 1_250_000 + 9_731 * (DAYS - days_ago) + 101 * number
            out.append(_event(job, run_id, "START", start, rows, failed))
            if running and start + timedelta(minutes=5) < now:  # a progress report, as long jobs send
                out.append(_event(job, run_id, "RUNNING", start + timedelta(minutes=5), rows, failed))
            if not running:
                out.append(_event(job, run_id, "FAIL" if failed else "COMPLETE", end, rows, failed))
    return sorted(out, key=lambda e: e["eventTime"])


def load(now: datetime | None = None) -> services.IngestResult:
    """Send the week's events through the ingest, as one batch. Raises spec.SpecMissing when
    PLINTH_OPENLINEAGE_SPEC_DIR names no spec (docs/lineage.md, "Where the spec comes from")."""
    spec = spec_module.load()
    body = json.dumps(events(now or datetime.now(UTC))).encode()
    items, _batch, facts = events_module.parse_body(body)
    checked = [events_module.check(item, spec, facts) for item in items]
    return services.lineage_ingest(events=checked, actor=None)
