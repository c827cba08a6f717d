"""Numbers and URIs an MLflow run brings with it: a comparison of extreme but finite metrics answers
(strict JSON has no infinity), and a dataset source keeps no credentials (query strings hold them)."""

import json
import uuid

import pytest

from catalog import experiments
from catalog.models import ExperimentRun, ModelVersion
from tests.factories import EntityFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("base", "value", "delta", "relative", "verdict"), [
    (1e-320, 1.0, 1.0, None, "better"),          # 1.0 / 1e-320 overflows
    (1e308, -1e308, None, None, "worse"),        # the difference overflows; its direction does not
    (1.7e308, 1.0, -1.7e308, -1.0, "worse"),
    (2.0, 3.0, 1.0, 0.5, "better"),
    (0.0, 3.0, 3.0, None, "better"),
])
def test_a_difference_or_ratio_that_overflows_is_null_with_the_verdict_kept(base, value, delta, relative, verdict):
    versions = [ModelVersion(version=str(n), metrics={"auc": v}) for n, v in ((1, base), (2, value))]
    cell = experiments.metric_rows(versions)[0]["cells"][1]
    assert (cell["delta"], cell["relative"], cell["verdict"]) == (delta, relative, verdict)


@pytest.mark.parametrize(("base", "value"), [(1e-320, 1.0), (1e308, -1e308)])
def test_the_compare_api_and_page_answer_extreme_metrics(demo_org, client, base, value):
    entity = EntityFactory(kind="Model", name=f"m-{uuid.uuid4().hex[:6]}")
    for n, metric in ((1, base), (2, value)):
        run = ExperimentRun.objects.create(run_id=uuid.uuid4().hex, name=f"r{n}", metrics={"grad": metric})
        ModelVersion.objects.create(entity=entity, version=str(n), version_number=n, experiment_run=run,
                                    run_id=run.run_id, metrics={"grad": metric})
    client.force_login(demo_org["users"]["alice"])
    api = client.get(f"/api/v1/entities/by-name/model/default/{entity.name}/compare", {"versions": "1,2"})
    assert api.status_code == 200, api.content
    cell = api.json()["metrics"][0]["cells"][1]
    assert cell["relative"] is None and (cell["delta"] is None) == (base == 1e308)
    assert client.get(f"/catalog/model/default/{entity.name}/compare/", {"versions": "1,2"}).status_code == 200


@pytest.mark.parametrize(("uri", "shown"), [
    ("postgresql://db.internal/shop?user=etl&password=hunter2", "postgresql://db.internal/shop"),
    ("https://acct.blob.core.windows.net/c/orders.csv?sv=2024-01-01&sig=abc%2Fdef",
     "https://acct.blob.core.windows.net/c/orders.csv"),
    ("https://bucket.s3.amazonaws.com/x.parquet?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA#part",
     "https://bucket.s3.amazonaws.com/x.parquet"),
    ("s3://key:secret@bucket/raw/x.parquet", "s3://bucket/raw/x.parquet"),
    ("jdbc:postgresql://etl:hunter2@db:5432/shop?password=x", "jdbc:postgresql://db:5432/shop"),
    ("jdbc:sqlserver://db;user=etl;password=hunter2", "jdbc:sqlserver://db"),
    ("/data/orders.csv", "/data/orders.csv"),
    ("file:///data/orders.csv#frag", "file:///data/orders.csv"),
])
def test_a_source_uri_keeps_no_credentials_in_user_info_query_parameters_or_fragment(uri, shown):
    assert experiments.source_uri(json.dumps({"uri": uri})) == shown
    # The OpenLineage name is read from the path (JDBC aside): dropping the query changes nothing it needs.
    if not uri.startswith("jdbc:"):
        assert experiments.openlineage_name("", shown, "x") == experiments.openlineage_name("", uri, "x")
