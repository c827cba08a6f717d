"""A Feast repository and a FeatureSet's `spec.feast` are written by whoever registers them: what they
say must neither name another team's private Dataset nor answer 500. Registries are built here with the
feast SDK's own classes (`to_proto`), which is what `feast apply` writes, then bent where a test says so."""

import json
import textwrap
from datetime import UTC, datetime

import pytest
from django.test import Client

from catalog import feast_sync, services
from catalog.models import Entity, Location, Relation
from portal.accounts.models import Role, Team
from tests.catalog.test_relation_visibility import ORG  # the fraud-ml and risk teams
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db



def _registry(repo, *, bend=None, views=("card_stats",)):
    """A file-registry Feast repository at `repo` with one entity and the named views (owner fraud-ml,
    batch source data/<view>.parquet); `bend(registry)` edits the protobuf before it is written."""
    with feast_sync._feast_imports():
        from feast import Entity as FeastEntity
        from feast import FeatureView, Field, FileSource, ValueType
        from feast.protos.feast.core.Registry_pb2 import Registry
        from feast.types import Int64
    (repo / "data").mkdir(parents=True)
    (repo / "feature_store.yaml").write_text("project: fraud\nregistry: data/registry.db\n")
    customer = FeastEntity(name="customer", join_keys=["cid"], value_type=ValueType.INT64)
    registry = Registry()
    registry.version_id = "v1"
    registry.last_updated.seconds = 1_700_000_000
    proto = customer.to_proto()
    proto.spec.project = "fraud"
    registry.entities.append(proto)
    for name in views:
        view = FeatureView(name=name, entities=[customer], tags={"team": "fraud-ml"},
                           source=FileSource(name=f"{name}_src", path=f"data/{name}.parquet", timestamp_field="ts"),
                           schema=[Field(name="cid", dtype=Int64), Field(name="n", dtype=Int64)])
        proto = view.to_proto()
        proto.spec.project = "fraud"
        registry.feature_views.append(proto)
    if bend:
        bend(registry)
    (repo / "data" / "registry.db").write_bytes(registry.SerializeToString())
    return repo


def _dataset(name: str, path, owner: str, visibility: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: plinth.dev/v1alpha1
        kind: Dataset
        metadata:
          name: {name}
          annotations:
            plinth.dev/visibility: {visibility}
            openlineage.io/dataset: "file/{path}"
        spec: {{type: table, owner: {owner}}}
        """)


# -- a feature view names only a Dataset its owner team may see -----------------------------------

@pytest.mark.parametrize(("owner", "visibility", "linked"), [
    ("risk", "private", False),      # another team's private dataset: as if none carried the name
    ("fraud-ml", "private", True),   # the view's own team's private dataset
    ("risk", "internal", True),      # everybody may see it
])
def test_a_feature_view_links_a_dataset_only_when_its_owner_team_may_see_it(write_tree, tmp_path, owner,
                                                                            visibility, linked):
    repo = _registry(tmp_path / "feast")
    root = write_tree({"org/catalog-info.yaml": ORG, "data/catalog-info.yaml":
                       _dataset("ledger", repo / "data" / "card_stats.parquet", owner, visibility)})
    services.location_register(target=str(root), actor=None, file_roots=None)
    member = MembershipFactory(team=Team.objects.get(name="fraud-ml"), role=Role.MEMBER).user
    plan = services.location_register(target=f"feast:{repo}", actor=member, file_roots=None)
    assert plan.summary()["errors"] == []
    spec = Entity.objects.get(ref="featureset:default/card_stats").spec
    assert spec.get("inputs") == (["dataset:default/ledger"] if linked else None)
    assert Relation.objects.filter(source_ref="featureset:default/card_stats", type="consumesDataset").exists() \
        is linked
    client = Client()
    client.force_login(member)
    for url in ("/api/v1/entities/by-name/featureset/default/card_stats",
                "/catalog/featureset/default/card_stats/features/"):
        response = client.get(url)
        assert response.status_code == 200
        assert ("ledger" in response.content.decode()) is linked, url


def test_an_internal_dataset_is_linked_though_a_private_one_of_another_team_claims_the_path_first(
        write_tree, tmp_path):
    repo = _registry(tmp_path / "feast")
    path = repo / "data" / "card_stats.parquet"
    root = write_tree({"org/catalog-info.yaml": ORG,
                       "a/catalog-info.yaml": _dataset("hidden-ledger", path, "risk", "private")})
    services.location_register(target=str(root), actor=None, file_roots=None)
    public = write_tree({"catalog-info.yaml": _dataset("orders", path, "risk", "internal")}, folder="public")
    services.location_register(target=str(public), actor=None, file_roots=None)
    services.location_register(target=f"feast:{repo}", actor=None, file_roots=None)
    assert Entity.objects.get(ref="featureset:default/card_stats").spec["inputs"] == ["dataset:default/orders"]


def test_a_private_dataset_made_internal_later_is_linked_on_the_next_refresh(write_tree, tmp_path):
    repo = _registry(tmp_path / "feast")
    root = write_tree({"org/catalog-info.yaml": ORG, "data/catalog-info.yaml":
                       _dataset("ledger", repo / "data" / "card_stats.parquet", "risk", "private")})
    services.location_register(target=str(root), actor=None, file_roots=None)
    services.location_register(target=f"feast:{repo}", actor=None, file_roots=None)
    assert "inputs" not in Entity.objects.get(ref="featureset:default/card_stats").spec
    (root / "data" / "catalog-info.yaml").write_text(
        _dataset("ledger", repo / "data" / "card_stats.parquet", "risk", "internal"))
    services.location_refresh(location=Location.objects.get(target=str(root)))
    plan = services.location_refresh(location=Location.objects.get(target=f"feast:{repo}"))
    assert plan.summary()["changed"] == ["featureset:default/card_stats"]  # the registry did not change
    assert Entity.objects.get(ref="featureset:default/card_stats").spec["inputs"] == ["dataset:default/ledger"]


# -- a malformed registry is an error naming the object, not a 500 --------------------------------

def _bad_entity(registry):
    entity = registry.entities.add()
    entity.spec.name, entity.spec.project, entity.spec.join_key = "merchant", "fraud", "mid"
    entity.spec.value_type = 999  # no ValueType: Entity.from_proto raises ValueError


def _bad_service(registry):
    service = registry.feature_services.add()
    service.spec.name, service.spec.project = "scoring", "fraud"
    projection = service.spec.features.add()
    projection.feature_view_name = "card_stats"
    column = projection.feature_columns.add()
    column.name, column.value_type = "n", 999


@pytest.mark.parametrize(("bend", "named"), [(_bad_entity, "Entity 'merchant'"),
                                             (_bad_service, "Feature service 'scoring'")])
def test_an_entity_or_feature_service_the_sdk_cannot_read_is_an_error_naming_it_and_the_views_still_read(
        tmp_path, settings, bend, named):
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    repo = _registry(tmp_path / "repo", bend=bend)
    user = MembershipFactory(team=Team.objects.create(name="fraud-ml"), role=Role.MAINTAINER).user
    client = Client(raise_request_exception=False)
    client.force_login(user)
    created = client.post("/api/v1/locations", {"target": f"feast:{repo}"}, content_type="application/json")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["added"] == ["featureset:default/card_stats"]
    assert [e["message"].split(" cannot")[0] for e in body["errors"]] == [named]
    assert "feast SDK" in body["errors"][0]["message"] and body["location"]["status"] == "error"
    refreshed = client.post("/api/v1/refresh", {"entityRef": "featureset:default/card_stats"},
                            content_type="application/json")
    assert refreshed.status_code == 200, refreshed.content


def test_a_registry_path_with_a_nul_character_is_a_400_naming_the_field(tmp_path, settings):
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "feature_store.yaml").write_text('project: fraud\nregistry: "data/\\0x.db"\n')
    user = MembershipFactory(team=Team.objects.create(name="fraud-ml"), role=Role.MAINTAINER).user
    client = Client(raise_request_exception=False)
    client.force_login(user)
    response = client.post("/api/v1/locations", {"target": f"feast:{repo}"}, content_type="application/json")
    assert response.status_code == 400, response.content
    assert "`registry` holds a NUL character" in response.json()["error"]["message"]
    assert not Location.objects.exists()


# -- freshness from a hand-written spec.feast --------------------------------------------------------

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("ttl", "seconds"), [
    (None, 0), ("0", 0), ("0s", 0), ("86400s", 86400), ("1d", 86400), ("2w", 1_209_600), ("1h30m", 5400),
    ("500ms", 0.5), (3600, 3600), (3600.0, 3600), ("0000000000000000000000000001s", 1),
    ("9" * 5000 + "s", float("inf")), (10**30, float("inf")),
    ("1x", None), ("", None), ("-5s", None), (-5, None), (True, None), ([1], None), ("1d ; 2h", None),
])
def test_every_ttl_form_of_the_schema_reads_as_seconds_and_others_as_unknown(ttl, seconds):
    assert feast_sync.ttl_to_seconds(ttl) == seconds


def test_a_one_day_ttl_written_as_1d_makes_an_old_materialization_stale():
    fresh = feast_sync.freshness({"ttl": "1d", "feast": {"lastMaterialized": "2026-11-29T12:00:00Z"}}, now=NOW)
    assert fresh["stale"] is True and fresh["ttl_seconds"] == 86400 and fresh["ttl"] == "1 day"


def test_a_ttl_too_long_to_count_never_runs_out_and_an_unreadable_one_is_unknown():
    endless = feast_sync.freshness({"ttl": "9" * 5000 + "s", "feast": {"lastMaterialized": "0002-06-01T00:00:00Z"}},
                                   now=NOW)
    assert endless["stale"] is False and endless["ttl"] == "over 30,000 years"
    unknown = feast_sync.freshness({"ttl": "soon", "feast": {"lastMaterialized": "2026-11-01T00:00:00Z"}}, now=NOW)
    assert unknown["ttl_seconds"] is None and unknown["stale"] is False and unknown["ttl"] == ""


def test_facts_of_other_types_are_left_out_and_times_near_the_calendars_ends_are_ignored():
    fresh = feast_sync.freshness({"feast": {
        "materializations": 5, "featureServices": 5, "project": {"a": 1},
        "lastMaterialized": "0001-01-01T00:00:00+14:00"}}, now=NOW)
    assert fresh["materializations"] == [] and fresh["facts"] == {"featureServices": []}
    assert fresh["materialized_at"] is None and fresh["stale"] is True
    many = feast_sync.freshness({"feast": {"materializations": [
        {"start": "0001-01-01T00:00:00+14:00", "end": "9999-12-31T23:59:59-14:00"}, "x",
        {"start": "2026-11-30T10:00:00+02:00", "end": 7}]}}, now=NOW)
    assert many["materializations"] == [(None, None), (datetime(2026, 11, 30, 8, 0, tzinfo=UTC), None)]


CARDS = {
    "mat-int": ({"feast": {"materializations": 5}}, "never materialized"),
    "svc-int": ({"feast": {"featureServices": 5, "lastMaterialized": "2026-11-30T00:00:00Z"}}, "never expire"),
    "ttl-long": ({"feast": {"lastMaterialized": "2020-01-01T00:00:00Z"}, "ttl": "9" * 5000 + "s"},
                 "within the TTL (over 30,000 years)"),
    "year1": ({"feast": {"lastMaterialized": "0001-01-01T00:00:00+14:00"}}, "never materialized"),
    "mat-year1": ({"feast": {"materializations": [{"start": "0001-01-01T00:00:00+14:00", "end": None}]}},
                  "Materializations, newest last"),
    "ttl-1d": ({"feast": {"lastMaterialized": "2020-01-01T00:00:00Z"}, "ttl": "1d"},
               "older than the TTL (1 day)"),
    "ttl-int": ({"feast": {"lastMaterialized": "2020-01-01T00:00:00Z"}, "ttl": 3600},
                "older than the TTL (1 h)"),
}


def test_feature_set_pages_with_unexpected_feast_facts_render_the_card_they_can(write_tree):
    docs = [ORG]
    for name, (spec, _) in CARDS.items():
        docs.append(json.dumps({"apiVersion": "plinth.dev/v1alpha1", "kind": "FeatureSet", "metadata": {"name": name},
                                "spec": {"owner": "fraud-ml", **spec}}))
    plan = services.location_register(target=str(write_tree({"catalog-info.yaml": "\n---\n".join(docs)})),
                                      actor=None, file_roots=None)
    assert plan.summary()["errors"] == []
    client = Client(raise_request_exception=False)
    client.force_login(MembershipFactory(team=Team.objects.get(name="fraud-ml"), role=Role.MEMBER).user)
    for name, (_, expected) in CARDS.items():
        assert client.get(f"/catalog/featureset/default/{name}/").status_code == 200, name
        page = client.get(f"/catalog/featureset/default/{name}/features/")
        assert page.status_code == 200, name
        assert expected in page.content.decode(), name
    assert "features never expire" not in client.get("/catalog/featureset/default/ttl-1d/features/").content.decode()
