"""Defects found by a review of the catalog's sources: MLflow names that slug alike, non-finite
numbers, the two YAML loaders, org sync's username matching and rate-limit headers."""

import json

import pytest

from catalog import mlflow_sync
from catalog.descriptors.refs import name_problem
from catalog.models import Entity, ModelVersion

pytestmark = pytest.mark.django_db


def _model(name: str, versions: list[str]) -> dict:
    return {"name": name, "description": "", "tags": {}, "prompt": False, "versions": [
        {"version": v, "aliases": [], "status": "READY", "description": "", "run_id": "", "source": "",
         "metrics": {}, "params": {}, "tags": {}, "created": None, "run": None} for v in versions]}


def _versions(entity: Entity) -> list[str]:
    return sorted(ModelVersion.objects.filter(entity=entity).values_list("version", flat=True))


# --- 1. MLflow model names whose entity names collide ---------------------------------------------


def test_a_model_whose_name_slugs_like_a_descriptor_model_does_not_take_its_versions(demo_org):
    """`Fraud_Detector` slugs to the descriptor's name `fraud-detector` but is another registered
    model: it gets an entity of its own instead of replacing the descriptor's versions."""
    mlflow_sync.store([_model("fraud-detector", ["1", "2", "3"]), _model("Fraud_Detector", ["7"])])
    detector = Entity.objects.get(ref="model:default/fraud-detector")
    assert detector.location is not None and _versions(detector) == ["1", "2", "3"]
    other = next(e for e in Entity.objects.filter(kind_key="model", source="mlflow")
                 if mlflow_sync.model_name(e) == "Fraud_Detector")
    assert other.pk != detector.pk and _versions(other) == ["7"]
    assert other.name.startswith("Fraud-Detector-") and name_problem(other.name) is None


def test_two_mlflow_models_that_slug_alike_keep_separate_entities_across_syncs(db):
    for _ in range(2):  # the second pass finds both by their annotation, not by name
        mlflow_sync.store([_model("churn.v2", ["1", "2"]), _model("churn_v2", ["9"])])
    by_model = {mlflow_sync.model_name(e): e for e in Entity.objects.filter(kind_key="model")}
    assert set(by_model) == {"churn.v2", "churn_v2"}
    assert by_model["churn.v2"].ref == "model:default/churn-v2", "the first keeps the plain name"
    assert _versions(by_model["churn.v2"]) == ["1", "2"] and _versions(by_model["churn_v2"]) == ["9"]
    assert by_model["churn_v2"].name == mlflow_sync._entity_name("churn_v2", 8)


def test_a_long_model_name_gives_a_valid_entity_name(db):
    mlflow_sync.store([_model("a" * 62 + ".b", ["1"])])
    entity = Entity.objects.get(kind_key="model")
    assert entity.name == "a" * 62 and name_problem(entity.name) is None
    assert mlflow_sync._entity_name("a" * 62 + ".b", 8).rstrip("0123456789abcdef") == "a" * 54 + "-"
    assert name_problem(mlflow_sync._entity_name("x" * 54 + "-" + "y" * 20, 8)) is None


def test_a_model_whose_every_name_is_taken_is_skipped_and_audited(db):
    from portal.core.models_audit import AuditEvent

    names = [mlflow_sync._entity_name("churn_v2", n) for n in (0, 8, 16)]
    mlflow_sync.store([_model(name, ["1"]) for name in names])  # three models hold those names
    assert mlflow_sync.store([_model("churn_v2", ["9"])]) == 0
    assert not ModelVersion.objects.filter(version="9").exists()
    event = AuditEvent.objects.get(action="catalog.mlflow.skip", target="mlflow:churn_v2")
    assert json.loads(event.payload)["outcome"] == "failure"


def test_a_descriptor_that_declares_its_mlflow_name_still_gets_its_versions(demo_org):
    """The demo's descriptors name their registered model by annotation; case does not matter."""
    mlflow_sync.store([_model("Product-Ranker", ["4"]), _model("fraud-detector", ["2"])])
    assert _versions(Entity.objects.get(ref="model:default/product-ranker")) == ["4"]
    assert _versions(Entity.objects.get(ref="model:default/fraud-detector")) == ["2"]
    assert not Entity.objects.filter(source="mlflow").exists()


# --- 2. Non-finite numbers -----------------------------------------------------------------------------

INF_DESCRIPTOR = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: inf-svc}
spec:
  type: service
  lifecycle: production
  owner: fraud-ml
  extra: {$json: ./x.json}
"""


@pytest.fixture
def api(demo_org):
    from django.test import Client

    from portal.accounts import services as account_services

    _, raw = account_services.token_create(user=demo_org["users"]["alice"], name="t")
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}", raise_request_exception=False)


def test_a_json_placeholder_with_a_number_beyond_float_range_is_an_error_not_a_500(api, write_tree):
    """`1e400` parses as infinity, which no JSON column stores: the dry run and the registration both
    refuse the file naming the placeholder, its file and the key, and nothing is stored."""
    from catalog.models import Location

    root = write_tree({"catalog-info.yaml": INF_DESCRIPTOR, "x.json": '{"a": [1, {"b": 1e400}]}'})
    target = str(root / "catalog-info.yaml")
    for url in ("/api/v1/locations?dryRun=true", "/api/v1/locations"):
        response = api.post(url, {"target": target}, content_type="application/json")
        assert response.status_code in (200, 201, 400), response.content
        text = response.content.decode()
        assert "x.json: the number at a[1].b is beyond a 64-bit float's range" in text, text
        assert "$json placeholder" in text
    assert not Entity.objects.filter(name="inf-svc").exists()
    assert not Location.objects.filter(target=target, status="ok").exists()


def test_non_finite_numbers_anywhere_in_an_entity_cannot_be_stored():
    from catalog.descriptors.loader import Document
    from catalog.descriptors.validate import storable_errors

    data = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "a"},
            "spec": {"type": "service", "lifecycle": "production", "owner": "x",
                     "x": [1.5, float("inf")], "y": {"z": float("nan")}}}
    errors = storable_errors(Document(data=data, source="request", line=1, index=0))
    assert sorted(e.field for e in errors) == ["spec.x[1]", "spec.y.z"]
    assert all("finite" in e.message for e in errors)


@pytest.mark.parametrize("body,field", [
    ('{"entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "a"},'
     ' "spec": {"type": "service", "lifecycle": "production", "owner": "x", "x": 1e400}}}', "entity.spec.x"),
    ('{"entity": {"kind": "Component", "spec": {"x": [1, -1e999]}}}', "entity.spec.x[1]"),
])
def test_an_api_body_with_a_number_beyond_float_range_is_refused_naming_it(api, body, field):
    response = api.post("/api/v1/validate-entity", body, content_type="application/json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith(f"{field}: Numbers must be finite") and field in error["details"]


# --- 3. The fast and the careful YAML loader read alike ------------------------------------------------

_CASES = {  # the YAML 1.2 core schema (as Backstage reads descriptors)
    "ttl: 010": {"ttl": 10}, "ttl: 09": {"ttl": 9}, "ttl: -010": {"ttl": -10}, "ttl: 0o17": {"ttl": 15},
    "ttl: 0x1F": {"ttl": 31}, "ttl: 1_000": {"ttl": "1_000"}, "ttl: 0b101": {"ttl": "0b101"},
    "ttl: -0x1": {"ttl": "-0x1"}, "ttl: 0X1F": {"ttl": "0X1F"}, "ttl: _1": {"ttl": "_1"},
    "ttl: 1_0.5": {"ttl": "1_0.5"}, "ttl: [1_0, 2]": {"ttl": ["1_0", 2]}, "ttl: 1.": {"ttl": 1.0},
    "ttl: 1:30": {"ttl": "1:30"}, "ttl: <<": {"ttl": "<<"},
    "spec: {<<: {system: payments}, type: service}": {"spec": {"system": "payments", "type": "service"}},
    "spec:\n  <<: {system: payments}\n  type: service": {"spec": {"system": "payments", "type": "service"}},
    "ttl: [e:, x]": None, "ttl: [:a, x]": None,  # YAML 1.1 flow syntax libyaml refuses
    "- {a: 1}": None,  # a list at the root is no descriptor
    "ttl: " + "9" * 5000: None,  # an integer Python cannot write as text again
    "ttl: 1e400": None, "ttl: .inf": None,
}


def _careful(text):
    from catalog.descriptors.loader import load_documents

    docs, errors = load_documents(text, "f.yaml")
    return [d.data for d in docs], [e.message for e in errors]


@pytest.mark.parametrize("text", list(_CASES))
def test_the_fast_and_the_careful_loader_read_a_file_alike(text):
    """Which loader reads a file depends on what else it holds (an anchor, a `*` in a description):
    the data, or the error, must not."""
    from catalog.descriptors.loader import load_documents_fast

    expected = _CASES[text]
    for variant in (text, text + "\ndescription: see *notes*\n"):  # the second takes the careful path
        data, errors = _careful(variant)
        if expected is None:
            assert data == [] and errors, variant
        else:
            assert errors == [] and {k: data[0][k] for k in expected} == expected, (variant, data, errors)
        fast = load_documents_fast(variant, "f.yaml")
        if fast is not None:  # None: the careful loader decides
            assert errors == [] and [d.data for d in fast] == data, (variant, [d.data for d in fast])


def test_an_explicit_tag_follows_the_same_number_rules():
    assert _careful("a: !!int 010\nb: !!float 1\n")[0] == [{"a": 10, "b": 1.0}]
    for text in ("a: !!int 1_000\n", "a: !!int 0b1\n", "a: !!float 1_0.5\n", "a: !!float abc\n"):
        assert _careful(text)[1], text


FEATURES = """apiVersion: plinth.dev/v1alpha1
kind: FeatureSet
metadata:
  name: {name}
  description: {desc}
spec:
  owner: fraud-ml
  entities:
    - {{name: card, joinKeys: [card_id], valueType: STRING}}
  features:
    - {{name: x, type: INT64}}
  ttl: {ttl}
"""


def test_registration_and_validation_read_numbers_alike_whichever_loader(api, write_tree):
    from catalog import services

    root = write_tree({
        "a/catalog-info.yaml": FEATURES.format(name="plain", desc="Plain text", ttl="010"),
        "b/catalog-info.yaml": FEATURES.format(name="starred", desc="The *new* one", ttl="010"),
        "c/catalog-info.yaml": FEATURES.format(name="plain09", desc="Plain text", ttl="09"),
        "d/catalog-info.yaml": FEATURES.format(name="starred09", desc="The *new* one", ttl="09"),
    })
    plan = services.location_register(target=str(root), actor=None, file_roots=None)
    assert not plan.errors, [str(e) for e in plan.errors]
    ttls = dict(Entity.objects.filter(kind_key="featureset", name__in=["plain", "starred", "plain09", "starred09"])
                .values_list("name", "data__spec__ttl"))
    assert ttls == {"plain": 10, "starred": 10, "plain09": 9, "starred09": 9}
    response = api.post("/api/v1/validate-entity", {"yaml": FEATURES.format(name="x", desc="y", ttl="09")},
                        content_type="application/json")
    assert response.status_code == 200, response.content


def test_a_list_at_the_root_is_refused_whichever_loader(write_tree):
    from catalog import services

    listed = ("- apiVersion: backstage.io/v1alpha1\n  kind: Component\n  metadata: {name: listed}\n"
              "  spec: {type: service, lifecycle: production, owner: team-a}\n")
    root = write_tree({"plain/catalog-info.yaml": listed, "risky/catalog-info.yaml": listed + "# see *notes*\n"})
    plan = services.location_register(target=str(root), actor=None, file_roots=None)
    assert not Entity.objects.filter(name="listed").exists()
    assert sum("is a list, not a mapping" in str(e) for e in plan.errors) == 2


# --- 4. Org sync matches user names without case -------------------------------------------------------

ORG = """apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: zteam}
spec: {type: team, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: zed}
spec: {memberOf: [zteam]}
"""


def test_org_sync_gives_the_membership_to_the_account_of_another_case(write_tree, settings):
    """The catalog's `zed` is the portal's `Zed` (as at single sign-on): no second account `zed`."""
    from django.contrib.auth import get_user_model

    from catalog import org_sync, services
    from portal.accounts.models import Membership

    settings.PLINTH_ORG_SYNC = "catalog"
    User = get_user_model()
    zed = User.objects.create_user("Zed", password="pw-123456789")
    services.location_register(target=str(write_tree({"catalog-info.yaml": ORG})), actor=None, file_roots=None)
    outcome = org_sync.sync()
    assert outcome.users_created == []
    assert list(User.objects.filter(username__iexact="zed").values_list("pk", flat=True)) == [zed.pk]
    assert list(Membership.objects.filter(team__name="zteam").values_list("user_id", flat=True)) == [zed.pk]
    assert org_sync.sync().as_dict() == {"usersCreated": 0, "added": 0, "changed": 0, "removed": 0}


def test_org_sync_moves_a_case_variant_duplicates_membership_to_the_oldest_account(write_tree, settings):
    """An account the old exact match created beside `Zed` loses what org sync gave it; `Zed` gets it."""
    from django.contrib.auth import get_user_model

    from catalog import org_sync, services
    from portal.accounts.models import Membership, MembershipSource
    from tests.factories import TeamFactory

    settings.PLINTH_ORG_SYNC = "catalog"
    User = get_user_model()
    zed = User.objects.create_user("Zed", password="pw-123456789")
    duplicate = User.objects.create_user("zed")
    Membership.objects.create(user=duplicate, team=TeamFactory(name="zteam"), role="member",
                              source=MembershipSource.ORG_SYNC)
    services.location_register(target=str(write_tree({"catalog-info.yaml": ORG})), actor=None, file_roots=None)
    outcome = org_sync.sync()
    assert (outcome.added, outcome.removed) == (1, 1)
    assert list(Membership.objects.filter(team__name="zteam").values_list("user_id", flat=True)) == [zed.pk]


# --- 5, 6. API bodies nested too deeply; error messages that name the field ----------------------------


@pytest.mark.parametrize("url,body", [
    ("/api/v1/locations", '{"target": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("/api/v1/validate-entity", '{"entity": {"kind": "Component", "spec": {"x": ' + "[" * 5000 + "]" * 5000 + "}}}"),
])
def test_a_json_body_nested_thousands_deep_is_a_400(api, url, body):
    response = api.post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The JSON body is nested too deeply."


def test_an_upload_error_names_the_field_path_not_python_reprs(api, settings, tmp_path):
    settings.PLINTH_CATALOG_UPLOAD_ROOT = tmp_path / "up"
    for files, message in [
        ([{"path": "x" * 301, "content": "x"}], "files[0].path: Ensure this field has no more than 300 characters."),
        ([{"path": "a.yaml", "content": "x"}, {"path": "b.yaml"}], "files[1].content: This field is required."),
    ]:
        response = api.post("/api/v1/locations/upload", {"source": "s9", "files": files},
                            content_type="application/json")
        assert response.status_code == 400
        assert response.json()["error"]["message"] == message


@pytest.mark.parametrize("details,summary", [
    ({"target": ["Required."]}, "target: Required."),
    ({"non_field_errors": ["Both given."]}, "Both given."),
    ({"files": {0: {"path": ["Too long."]}}}, "files[0].path: Too long."),
    ({"files": [{}, {"path": ["Too long."]}]}, "files[1].path: Too long."),
    ({"spec": {"owner": {"name": ["Bad."]}}}, "spec.owner.name: Bad."),
    ({"files": [{}, {"non_field_errors": ["Duplicate."]}]}, "files[1]: Duplicate."),
    ({"tags": {2: ["Not a string."]}}, "tags[2]: Not a string."),
    ({"matrix": {0: {1: ["Bad cell."]}}}, "matrix[0][1]: Bad cell."),
    (["Just this."], "Just this."),
    ({"files": [{}, {}], "source": ["Required."]}, "source: Required."),
    ({}, "Invalid request."),
])
def test_the_error_summary_flattens_every_drf_error_shape(details, summary):
    from rest_framework.exceptions import ErrorDetail

    from portal.core.api import _summary

    def detailed(value):  # as DRF hands them over
        if isinstance(value, dict):
            return {k: detailed(v) for k, v in value.items()}
        if isinstance(value, list):
            return [detailed(v) for v in value]
        return ErrorDetail(value, code="invalid")

    assert _summary(detailed(details)) == summary


def test_an_entity_body_deeper_than_a_descriptor_may_be_is_refused_like_its_yaml(api):
    """800 levels parse as JSON (below the parser's recursion limit) but no descriptor file may nest
    that deep: the `entity` form of validate-entity is held to the loader's caps."""
    deep = "[" * 800 + "]" * 800
    entity = ('{"entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "x"}, '
              '"spec": {"type": "service", "lifecycle": "production", "owner": "group:default/fraud-ml", "x": '
              + deep + "}}}")
    response = api.post("/api/v1/validate-entity", entity, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("entity: Nested deeper than 50 levels")


def test_a_descriptor_the_portal_writes_itself_with_infinity_is_a_field_error():
    """A generated descriptor (a Deployment reported by a CD pipeline) does not come through the loader:
    build_candidate names the field instead of failing at the write."""
    from catalog.descriptors.loader import Document
    from catalog.ingest.reader import build_candidate

    data = {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "x", "annotations": {}},
            "spec": {"type": "service", "lifecycle": "production", "owner": "group:default/fraud-ml",
                     "extra": {"score": float("inf")}}}
    candidate, errors = build_candidate(Document(data=data, source="generated", line=1, index=0, field_lines={}))
    assert candidate is None and errors
    assert "spec.extra.score" in str(errors[0].as_dict()) and "finite" in errors[0].as_dict()["message"]
