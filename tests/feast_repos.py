"""A real Feast feature repository for the tests, built once per test session with the `feast` CLI
(`feast apply`, `feast materialize-incremental`; file registry, SQLite online store): the catalog's Feast
tests and the browser journey share it through the session fixture `feast_repos` (tests/conftest.py).
Each CLI call takes seconds, so building it once per session keeps the suite's time down."""

import shutil
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

FEAST = str(Path(sys.executable).parent / "feast")
CONFIG = textwrap.dedent("""\
    project: fraud
    registry: data/registry.db
    provider: local
    online_store:
      type: sqlite
      path: data/online.db
    entity_key_serialization_version: 3
    """)
DEFINITIONS = textwrap.dedent("""\
    from datetime import timedelta
    from feast import Entity, FeatureService, FeatureView, Field, FileSource
    from feast.types import Float32, Int64, String

    customer = Entity(name="customer", join_keys=["customer_id"], description="A card holder")
    merchant = Entity(name="merchant", join_keys=["merchant_id"])
    stats_source = FileSource(name="customer_stats_source", path="{data}/customer_stats.parquet",
                              timestamp_field="event_timestamp")
    risk_source = FileSource(name="merchant_risk_source", path="{data}/merchant_risk.parquet",
                             timestamp_field="event_timestamp")
    customer_stats = FeatureView(
        name="customer_stats", entities=[customer], ttl=timedelta(days=1), source=stats_source, online=True,
        schema=[Field(name="customer_id", dtype=Int64),
                Field(name="txn_count_7d", dtype=Int64, description="Card transactions in 7 days"),
                Field(name="avg_amount", dtype=Float32)],
        tags={{"team": "fraud-ml", "tier": "gold"}}, owner="ana@example.com", description="Card holder statistics")
    """)
RISK = textwrap.dedent("""\
    merchant_risk = FeatureView(
        name="merchant_risk", entities=[merchant], ttl=timedelta(0), source=risk_source,
        schema=[Field(name="merchant_id", dtype=Int64), Field(name="risk_band", dtype=String)],
        tags={"team": "fraud-ml", "pii": "true"})
    scoring = FeatureService(name="fraud_scoring", features=[customer_stats, merchant_risk])
    """)
NO_RISK = 'scoring = FeatureService(name="fraud_scoring", features=[customer_stats])\n'


def feast(repo: Path, *args: str) -> None:
    done = subprocess.run([FEAST, *args], cwd=repo, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]


def build(base: Path) -> dict:
    """{"v1": a repository applied and materialized, "v2": the same re-applied without merchant_risk,
    "materialized_until": the end time given to materialize}. Built once: each CLI call takes seconds."""
    import pandas as pd

    data = base / "data"
    data.mkdir()
    now = datetime.now(UTC).replace(microsecond=0)
    pd.DataFrame({"customer_id": [1, 2], "txn_count_7d": [3, 5], "avg_amount": [10.5, 2.0],
                  "event_timestamp": [now - timedelta(hours=2)] * 2}).to_parquet(data / "customer_stats.parquet")
    pd.DataFrame({"merchant_id": [7], "risk_band": ["high"],
                  "event_timestamp": [now - timedelta(hours=2)]}).to_parquet(data / "merchant_risk.parquet")
    v1 = base / "v1"
    (v1 / "data").mkdir(parents=True)
    (v1 / "feature_store.yaml").write_text(CONFIG)
    (v1 / "features.py").write_text(DEFINITIONS.format(data=data) + RISK)
    feast(v1, "apply")
    until = now - timedelta(minutes=1)
    feast(v1, "materialize-incremental", until.strftime("%Y-%m-%dT%H:%M:%S"))
    v2 = base / "v2"
    shutil.copytree(v1, v2)
    (v2 / "features.py").write_text(DEFINITIONS.format(data=data) + NO_RISK)
    feast(v2, "apply")
    return {"v1": v1, "v2": v2, "data": data, "materialized_until": until}
