"""Cost fixtures: FOCUS files written the way provider exports look (a header row, ISO times with
offsets, Tags as JSON), and the demo organisation with cost-relevant annotations."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from catalog.models import Entity

HEADER = ["BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "BillingCurrency", "BillingAccountId",
          "BillingPeriodStart", "BillingPeriodEnd", "ChargePeriodStart", "ChargePeriodEnd", "ChargeCategory",
          "ChargeClass", "ChargeFrequency", "ServiceName", "ServiceCategory", "ResourceId", "RegionId", "Tags",
          "ProviderName", "x_CostCenter"]
DETECTOR = "model:default/fraud-detector"
PRIVATE = "model:default/chargeback-predictor"  # fraud-ml's private model
RECSYS_MODEL = "model:default/product-ranker"


def line(billed="10.00", effective=None, *, currency="USD", start="2026-01-05T00:00:00Z",
         end="2026-01-06T00:00:00Z", period="2026-01-01T00:00:00Z", category="Usage", service="Amazon SageMaker",
         resource="", tags=None, region="eu-west-1", charge_class="", listed=None) -> dict:
    return {"BilledCost": billed, "EffectiveCost": billed if effective is None else effective,
            "ListCost": billed if listed is None else listed, "ContractedCost": billed, "BillingCurrency": currency,
            "BillingAccountId": "123456789012", "BillingPeriodStart": period,
            "BillingPeriodEnd": "2026-02-01T00:00:00Z" if period.startswith("2026-01") else "2026-03-01T00:00:00Z",
            "ChargePeriodStart": start, "ChargePeriodEnd": end, "ChargeCategory": category, "ChargeClass": charge_class,
            "ChargeFrequency": "Usage-Based", "ServiceName": service, "ServiceCategory": "AI and Machine Learning",
            "ResourceId": resource, "RegionId": region,
            "Tags": "" if tags is None else (tags if isinstance(tags, str) else json.dumps(tags)),
            "ProviderName": "AWS", "x_CostCenter": "cc-1"}


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of ~2 rows, so that a file of a few rows is read as several columnar batches."""
    from portal.costs import focus

    monkeypatch.setattr(focus, "CSV_BLOCK", 1000)


def write_csv(path: Path, rows: list[dict], header: list[str] | None = None) -> Path:
    header = header or HEADER
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    """Parquet the way exporters write it: decimals as float64, times as UTC timestamps, Tags a map."""
    from datetime import datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    def when(text):
        return datetime.fromisoformat(text)

    table = pa.table({
        "BilledCost": pa.array([float(r["BilledCost"]) for r in rows], pa.float64()),
        "EffectiveCost": pa.array([float(r["EffectiveCost"]) for r in rows], pa.float64()),
        "ListCost": pa.array([float(r["ListCost"]) for r in rows], pa.float64()),
        "BillingCurrency": [r["BillingCurrency"] for r in rows],
        "BillingPeriodStart": pa.array([when(r["BillingPeriodStart"]) for r in rows], pa.timestamp("ms", tz="UTC")),
        "BillingPeriodEnd": pa.array([when(r["BillingPeriodEnd"]) for r in rows], pa.timestamp("ms", tz="UTC")),
        "ChargePeriodStart": pa.array([when(r["ChargePeriodStart"]) for r in rows], pa.timestamp("ms", tz="UTC")),
        "ChargePeriodEnd": pa.array([when(r["ChargePeriodEnd"]) for r in rows], pa.timestamp("ms", tz="UTC")),
        "ChargeCategory": [r["ChargeCategory"] for r in rows],
        "ChargeClass": [r["ChargeClass"] or None for r in rows],
        "ServiceName": [r["ServiceName"] for r in rows],
        "ServiceCategory": [r["ServiceCategory"] for r in rows],
        "ResourceId": [r["ResourceId"] or None for r in rows],
        "RegionId": [r["RegionId"] for r in rows],
        "Tags": pa.array([list(json.loads(r["Tags"]).items()) if r["Tags"] else None for r in rows],
                         pa.map_(pa.string(), pa.string())),
    })
    pq.write_table(table, path, row_group_size=2)
    return path


def annotate(ref: str, **annotations: str) -> Entity:
    """Add annotations to a demo entity's stored descriptor (what a refreshed descriptor would hold)."""
    entity = Entity.objects.get(ref=ref)
    data = entity.data
    data.setdefault("metadata", {}).setdefault("annotations", {}).update(annotations)
    Entity.objects.filter(pk=entity.pk).update(data=data)
    entity.refresh_from_db()
    return entity


@pytest.fixture
def costed(demo_org, tmp_path):
    """The demo org with one month of fraud-ml and recsys costs imported and allocated (docs/finops.md's
    rules all used: an entity tag, a ResourceId prefix from a descriptor, a team tag, a shared line, an
    untagged line, a credit, and EUR next to USD)."""
    from portal.costs import services

    annotate(DETECTOR, **{"plinth.dev/cost-resource-ids": "arn:aws:sagemaker:eu-west-1:1:endpoint/fraud-detector-*",
                          "plinth.dev/value-monthly": "25000 USD", "plinth.dev/value-kpi": "Chargeback losses avoided"})
    rows = [
        line("100.00", resource="arn:aws:sagemaker:eu-west-1:1:endpoint/fraud-detector-prod"),
        line("50.00", effective="40.00", tags={"plinth-entity": DETECTOR}),
        line("-5.00", category="Credit", resource="arn:aws:sagemaker:eu-west-1:1:endpoint/fraud-detector-prod"),
        line("30.00", tags={"plinth-entity": PRIVATE}),
        line("60.00", tags={"plinth-entity": RECSYS_MODEL}),
        line("20.00", tags={"team": "recsys"}),
        line("40.00", tags={"plinth-shared": "true"}),
        line("7.00", service="AWS Support"),
        line("12.00", currency="EUR", tags={"team": "fraud-ml"}),
    ]
    path = write_csv(tmp_path / "aws-2026-01.csv", rows)
    imp = services.import_now(path=path, provider="aws")
    assert imp.status == "done", imp.error
    return demo_org
