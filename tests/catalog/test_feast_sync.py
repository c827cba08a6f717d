"""Feast feature repositories as catalog locations, against a real repository made here with the `feast`
CLI (`feast apply`, `feast materialize-incremental`; file registry, SQLite online store)."""

import shutil
import textwrap
from datetime import datetime
from pathlib import Path

import pytest
from django.test import Client

from catalog import feast_sync, services
from catalog.models import Entity, Location, ProcessingError, Relation
from portal.accounts import services as account_services
from tests.feast_repos import CONFIG, DEFINITIONS, RISK
from tests.feast_repos import feast as _feast

pytestmark = pytest.mark.django_db


@pytest.fixture
def repo(feast_repos, tmp_path, settings):
    """A fresh copy of the applied and materialized repository, under a folder the catalog may read."""
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    target = tmp_path / "features"
    shutil.copytree(feast_repos["v1"], target)
    return target


def register(path: Path, actor=None):
    return services.location_register(target=f"feast:{path}", actor=actor, file_roots=None)


DATASET = textwrap.dedent("""\
    apiVersion: plinth.dev/v1alpha1
    kind: Dataset
    metadata:
      name: card-stats
      annotations:
        openlineage.io/dataset: "file/{path}"
    spec: {{type: table, owner: fraud-ml}}
    """)
MODEL = textwrap.dedent("""\
    apiVersion: plinth.dev/v1alpha1
    kind: Model
    metadata: {name: card-scorer}
    spec: {type: classifier, owner: fraud-ml, consumesFeatures: [customer_stats]}
    """)


def test_feature_views_become_feature_sets_with_schema_entities_ttl_stores_owner_and_freshness(repo, feast_repos):
    plan = register(repo)
    assert plan.summary()["errors"] == []
    assert sorted(plan.summary()["added"]) == ["featureset:default/customer_stats", "featureset:default/merchant_risk"]
    stats = Entity.objects.get(ref="featureset:default/customer_stats")
    spec = stats.spec
    assert stats.owner_ref == "group:default/fraud-ml" and stats.title == "fraud/customer_stats"
    assert stats.description == "Card holder statistics"
    assert spec["entities"] == [{"name": "customer", "joinKeys": ["customer_id"], "valueType": "Int64",
                                 "description": "A card holder"}]
    assert spec["features"] == [{"name": "txn_count_7d", "type": "Int64", "description": "Card transactions in 7 days"},
                                {"name": "avg_amount", "type": "Float32"}]
    assert spec["ttl"] == "86400s" and spec["online"] is True
    assert spec["source"]["namespace"] == "file"
    assert spec["source"]["datasetName"] == f"{feast_repos['data']}/customer_stats.parquet"
    facts = spec["feast"]
    assert facts["project"] == "fraud" and facts["onlineStore"] == "sqlite"
    assert facts["featureServices"] == ["fraud_scoring"] and facts["ownerContact"] == "ana@example.com"
    assert "tier:gold" in stats.tags and "feast" in stats.tags
    assert "feast-service:fraud-scoring" in stats.tags, "a feature service groups its feature sets by tag"
    # Freshness is the materialization that really ran (the end time given to the CLI).
    materialized = datetime.fromisoformat(facts["lastMaterialized"].replace("Z", "+00:00"))
    assert materialized == feast_repos["materialized_until"].replace(tzinfo=materialized.tzinfo) or \
        abs((materialized - feast_repos["materialized_until"]).total_seconds()) < 1
    fresh = feast_sync.freshness(spec)
    assert fresh["stale"] is False and fresh["ttl_seconds"] == 86400 and fresh["ttl"] == "1 day"
    risk = Entity.objects.get(ref="featureset:default/merchant_risk")
    assert risk.spec["ttl"] == "0" and "pii" in risk.tags
    location = Location.objects.get(target=f"feast:{repo}")
    assert location.type == "feast" and location.status == "ok" and location.entity_count == 2


def test_source_dataset_relation_from_the_openlineage_name_also_when_the_dataset_comes_later(
        repo, feast_repos, write_tree):
    register(repo)
    assert not Relation.objects.filter(source_ref="featureset:default/customer_stats", type="consumesDataset").exists()
    unchanged = services.location_refresh(location=Location.objects.get(target=f"feast:{repo}"))
    assert unchanged.summary()["changed"] == []
    folder = write_tree({"catalog-info.yaml": DATASET.format(path=f"{feast_repos['data']}/customer_stats.parquet")
                         + "---\n" + MODEL}, folder="datasets")
    services.location_register(target=str(folder), actor=None, file_roots=None)
    again = services.location_refresh(location=Location.objects.get(target=f"feast:{repo}"))
    assert again.summary()["changed"] == ["featureset:default/customer_stats"]  # the registry did not change
    assert Relation.objects.filter(source_ref="featureset:default/customer_stats", type="consumesDataset",
                                   target_ref="dataset:default/card-stats").exists()
    assert Relation.objects.filter(source_ref="dataset:default/card-stats", type="datasetConsumedBy",
                                   target_ref="featureset:default/customer_stats").exists()
    assert Relation.objects.filter(source_ref="featureset:default/customer_stats", type="featuresConsumedBy",
                                   target_ref="model:default/card-scorer").exists()


def test_a_reapply_that_drops_a_feature_view_removes_its_entity(repo, feast_repos, settings):
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "delete"
    register(repo)
    shutil.copy(feast_repos["v2"] / "data" / "registry.db", repo / "data" / "registry.db")
    plan = services.location_refresh(location=Location.objects.get(target=f"feast:{repo}"))
    assert plan.summary()["removed"] == ["featureset:default/merchant_risk"]
    assert not Entity.objects.filter(ref="featureset:default/merchant_risk").exists()
    assert Entity.objects.get(ref="featureset:default/customer_stats").spec["feast"]["featureServices"] == \
        ["fraud_scoring"]


def test_a_dropped_feature_view_is_orphaned_with_the_keep_strategy(repo, feast_repos, settings):
    settings.PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"
    register(repo)
    shutil.copy(feast_repos["v2"] / "data" / "registry.db", repo / "data" / "registry.db")
    services.location_refresh(location=Location.objects.get(target=f"feast:{repo}"))
    orphan = Entity.objects.get(ref="featureset:default/merchant_risk")
    assert orphan.orphan is True and orphan.location_id is None


@pytest.fixture
def api(demo_org):
    _, raw = account_services.token_create(user=demo_org["users"]["alice"], name="tests")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def test_registering_through_the_api_and_the_entity_page(api, repo, feast_repos, client, demo_org,
                                                         django_assert_max_num_queries):
    created = api.post("/api/v1/locations", {"target": f"feast:{repo}"}, content_type="application/json")
    assert created.status_code == 201, created.content
    assert created.json()["location"]["type"] == "feast"
    client.force_login(demo_org["users"]["alice"])
    url = "/catalog/featureset/default/customer_stats/features/"
    client.get(url)
    with django_assert_max_num_queries(16):
        page = client.get(url)
    html = page.content.decode()
    assert "Freshness (Feast)" in html and "badge-ok" in html and "fresh</span>" in html
    assert "txn_count_7d" in html and "customer_id" in html and "fraud_scoring" in html and "sqlite" in html
    # The batch source is a local file: shown as its URI, not as the annotation's `file//…`.
    assert f"<code>file://{feast_repos['data']}/customer_stats.parquet</code> (no Dataset entity" in html


def _corrupt(repo: Path, content: bytes) -> None:
    (repo / "data" / "registry.db").write_bytes(content)


@pytest.mark.parametrize("breakage,message", [
    ("no-config", "no feature_store.yaml"),
    ("no-registry", "registry file does not exist"),
    ("garbage", "not a Feast registry"),
    ("empty", "not a Feast registry"),
    ("text", "not a Feast registry"),
    ("remote", "only local file registries"),
    ("escape", "leaves the feature repository"),
])
def test_a_broken_repository_is_refused_naming_the_problem_and_nothing_is_stored(api, repo, breakage, message):
    if breakage == "no-config":
        (repo / "feature_store.yaml").unlink()
    elif breakage == "no-registry":
        (repo / "data" / "registry.db").unlink()
    elif breakage == "garbage":
        _corrupt(repo, b"\xff\xfe\x00 not protobuf \x8f\x8f\x8f" * 10)
    elif breakage == "empty":
        _corrupt(repo, b"")
    elif breakage == "text":
        _corrupt(repo, b"apiVersion: v1\nkind: Something\n")
    elif breakage == "remote":
        (repo / "feature_store.yaml").write_text(CONFIG.replace("data/registry.db", "s3://bucket/registry.db"))
    elif breakage == "escape":
        (repo / "feature_store.yaml").write_text(CONFIG.replace("data/registry.db", "../../etc/passwd"))
    locations, entities = Location.objects.count(), Entity.objects.count()
    response = api.post("/api/v1/locations", {"target": f"feast:{repo}"}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert message.lower() in response.content.decode().lower()
    assert Location.objects.count() == locations and Entity.objects.count() == entities


@pytest.mark.parametrize("target,message", [
    ("feast:relative/path", "absolute path"),
    ("feast:/etc", "outside the folders"),
    ("feast:/no/such/folder", "outside the folders"),
])
def test_bad_feast_targets_are_400(api, repo, target, message):
    response = api.post("/api/v1/locations", {"target": target}, content_type="application/json")
    assert response.status_code == 400 and message in response.content.decode()


def test_a_registry_that_breaks_later_keeps_the_entities_and_shows_the_error(repo):
    register(repo)
    _corrupt(repo, b"\x00\x01garbage")
    location = Location.objects.get(target=f"feast:{repo}")
    plan = services.location_refresh(location=location)
    assert plan.summary()["removed"] == []
    location.refresh_from_db()
    assert location.status == "error" and location.entity_count == 2
    assert "not a Feast registry" in ProcessingError.objects.get(location=location).message
    (repo / "feature_store.yaml").write_text("project: [not, a, name]\n")
    services.location_refresh(location=location)
    assert Entity.objects.filter(location=location).count() == 2
    assert any("has no `project`" in e.message for e in ProcessingError.objects.filter(location=location))


def test_a_feature_view_without_an_owner_tag_is_an_error_naming_it(feast_repos, tmp_path, settings):
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    repo = tmp_path / "untagged"
    shutil.copytree(feast_repos["v1"], repo)
    (repo / "features.py").write_text((DEFINITIONS.format(data=feast_repos["data"]) + RISK)
                                      .replace('tags={"team": "fraud-ml", "pii": "true"}', 'tags={"pii": "true"}'))
    _feast(repo, "apply")
    plan = register(repo)
    assert plan.summary()["added"] == ["featureset:default/customer_stats"]
    assert any("merchant_risk" in e["message"] and "team" in e["message"] for e in plan.summary()["errors"])


@pytest.mark.parametrize("seconds,text", [(0, ""), (86400, "1 day"), (5400, "1 h 30 min"), (172861, "2 days 1 min 1 s")])
def test_ttl_reads_as_a_duration(seconds, text):
    assert feast_sync.duration_text(seconds) == text


def test_freshness_reads_a_hand_written_time_without_offset_as_utc():
    """`spec.feast` is a free object in a descriptor: a lastMaterialized without an offset was subtracted
    from an aware time (TypeError: the FeatureSet's page answered 500 while the descriptor said so)."""
    from datetime import UTC

    spec = {"ttl": "3600s", "feast": {"lastMaterialized": "2026-12-01T10:00:00",
                                      "materializations": [{"start": "2026-12-01T09:00:00", "end": "2026-12-01T10:00:00"}]}}
    fresh = feast_sync.freshness(spec, now=datetime(2026, 12, 1, 10, 30, tzinfo=UTC))
    assert fresh["materialized_at"] == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    assert fresh["age"].total_seconds() == 1800 and not fresh["stale"]
    assert fresh["materializations"][0][1].tzinfo is not None
