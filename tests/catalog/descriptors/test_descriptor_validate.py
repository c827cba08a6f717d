"""Every kind's valid example and typical invalid ones, metadata rules, link schemes."""

import copy

import pytest

from catalog.descriptors.loader import Document, load_documents
from catalog.descriptors.validate import KINDS, normalize, registered_model_name, validate_entity

BS = "backstage.io/v1alpha1"
PL = "plinth.dev/v1alpha1"

VALID = {
    "Component": {
        "type": "service",
        "lifecycle": "production",
        "owner": "team-a",
        "system": "s",
        "providesApis": ["a"],
        "consumesApis": ["api:b"],
        "dependsOn": ["resource:db"],
        "subcomponentOf": "parent",
    },
    "API": {"type": "openapi", "lifecycle": "production", "owner": "team-a", "definition": "openapi: 3.0.0"},
    "Resource": {"type": "database", "owner": "team-a", "dependsOn": ["resource:x"]},
    "System": {"owner": "team-a", "domain": "d"},
    "Domain": {"owner": "team-a"},
    "Group": {"type": "team", "children": [], "parent": "org", "members": ["jane"]},
    "User": {"memberOf": ["team-a"], "profile": {"displayName": "Jane"}},
    "Location": {"targets": ["./a.yaml"]},
    "Template": {
        "type": "service",
        "owner": "team-a",
        "parameters": [{"title": "x"}],
        "steps": [{"id": "fetch", "action": "fetch:template", "input": {"url": "./s"}}],
    },
    "AiResource": {"type": "skill", "lifecycle": "production", "owner": "team-a", "agents": ["x"]},
    "Model": {
        "type": "classifier",
        "lifecycle": "production",
        "owner": "team-a",
        "system": "fraud",
        "mlflow": {"registeredModel": "fraud-detector"},
        "riskTier": 2,
        "modelCard": "docs/card.md",
        "consumesFeatures": [
            "customer-features",
            {"featureSet": "featureset:ops/txn", "features": ["amount_7d"]},
        ],
        "trainedOn": ["transactions-2024"],
    },
    "FeatureSet": {
        "owner": "team-a",
        "ttl": "24h",
        "online": True,
        "offline": True,
        "source": "bq://t",
        "entities": [{"name": "customer", "joinKeys": ["customer_id"], "valueType": "INT64"}],
        "features": [{"name": "amount_7d", "type": "Float32", "description": "sum"}],
    },
    "Pipeline": {
        "type": "training",
        "owner": "team-a",
        "schedule": "0 3 * * *",
        "orchestrator": "airflow",
        "inputs": ["transactions-2024"],
        "outputs": ["dataset:scores"],
    },
    "Dataset": {
        "owner": "team-a",
        "uri": "s3://bucket/tx/",
        "classification": "pii",
        "schema": [{"name": "customer_id", "type": "int64", "pii": True}],
    },
    "Deployment": {
        "owner": "team-a",
        "model": "model:fraud-detector",
        "version": "3",
        "environment": "prod",
        "endpoint": "https://serving.example.com/fraud-detector",
        "platform": "kserve",
        "status": "live",
        "servedBy": "component:fraud-scoring-service",
    },
}
VERSIONS = {
    "Template": "scaffolder.backstage.io/v1beta3",
    "Model": PL,
    "FeatureSet": PL,
    "Pipeline": PL,
    "Dataset": PL,
    "Deployment": PL,
}


def entity(kind, spec=None, **meta):
    data = {
        "apiVersion": VERSIONS.get(kind, BS),
        "kind": kind,
        "metadata": {"name": "thing", **meta},
        "spec": copy.deepcopy(spec or VALID[kind]),
    }
    return data


def check(data):
    return validate_entity(Document(data, "mem.yaml", 1, 0, {}))


def fields(data):
    return {e.field for e in check(data)}


def test_every_kind_has_a_valid_example():
    assert set(VALID) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_examples(kind):
    assert check(entity(kind)) == []


@pytest.mark.parametrize("kind", sorted(VALID))
def test_missing_spec_and_required_fields(kind):
    data = entity(kind)
    del data["spec"]
    assert fields(data) == {"spec"}
    for required in KINDS[kind].required:
        data = entity(kind)
        del data["spec"][required]
        assert f"spec.{required}" in fields(data), required


def test_unknown_kind_and_api_version():
    (err,) = check({**entity("Component"), "kind": "component"})
    assert "did you mean 'Component'" in err.message and "Model" in err.message
    (err,) = check({**entity("Model"), "apiVersion": BS})
    assert err.field == "apiVersion" and "plinth.dev/v1alpha1" in err.message
    assert check({**entity("Component"), "apiVersion": "backstage.io/v1beta1"}) == []


def test_envelope_rules():
    data = entity("Component")
    data["relations"] = []
    data["extra"] = 1
    data["metadata"]["uid"] = "x"
    assert fields(data) == {"relations", "extra", "metadata.uid"}
    assert {e.field for e in check({"kind": "Component"})} == {"apiVersion", "metadata", "spec"}


@pytest.mark.parametrize(
    "meta,field",
    [
        ({"name": "bad name"}, "metadata.name"),
        ({"name": "p\u0430yments"}, "metadata.name"),
        ({"namespace": "Default"}, "metadata.namespace"),
        ({"tags": ["ok", "Not OK"]}, "metadata.tags[1]"),
        ({"tags": "java"}, "metadata.tags"),
        ({"labels": {"bad key!": "x"}}, 'metadata.labels["bad key!"]'),
        ({"labels": {"ok": "not ok"}}, "metadata.labels.ok"),
        ({"annotations": {"example.com/n": 5}}, 'metadata.annotations["example.com/n"]'),
        ({"title": "x" * 256}, "metadata.title"),
        ({"description": ["x"]}, "metadata.description"),
    ],
)
def test_metadata_rules(meta, field):
    data = entity("Component")
    data["metadata"].update(meta)
    assert fields(data) == {field}


@pytest.mark.parametrize(
    "url,ok",
    [
        ("https://example.com/x", True),
        ("http://example.com", True),
        ("mailto:team@example.com", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        (" javascript:alert(1)", False),
        ("data:text/html,<script>", False),
        ("file:///etc/passwd", False),
        ("vbscript:x", False),
        ("//evil.example", False),
        ("/relative", False),
        ("https:///nohost", False),
        ("java\tscript:x", False),
    ],
)
def test_link_schemes(url, ok):
    data = entity("Component", links=[{"url": url, "title": "t"}])
    assert (fields(data) == set()) is ok
    if not ok:
        assert fields(data) == {"metadata.links[0].url"}


def test_html_in_title_is_just_text():
    assert check(entity("Component", title="<b>x</b>", description="<script>x</script>")) == []


def test_ref_fields_must_parse():
    spec = {**VALID["Component"], "dependsOn": ["db"], "owner": "bad owner", "consumesApis": ["x:y:z"]}
    assert fields(entity("Component", spec)) == {"spec.dependsOn[0]", "spec.owner", "spec.consumesApis[0]"}
    (err,) = check(entity("Group", {"type": "team", "children": ["Bad Child"]}))
    assert err.field == "spec.children[0]"


def test_api_mcp_server_and_ai_resource_variants():
    mcp = {"type": "mcp-server", "lifecycle": "x", "owner": "a", "remotes": [{"type": "http", "url": "u"}]}
    assert check(entity("API", mcp)) == []
    assert fields(entity("API", {**mcp, "remotes": []})) == {"spec.remotes"}
    rule = {"type": "rule", "lifecycle": "x", "owner": "a", "category": "c"}
    assert fields(entity("AiResource", rule)) == {"spec.rationale"}


def test_location_needs_target_or_targets():
    (err,) = check(entity("Location", {"type": "url"}))
    assert err.field == "spec" and "target or targets" in err.message
    assert check(entity("Location", {"target": "./x.yaml"})) == []


@pytest.mark.parametrize(
    "kind,change,field",
    [
        ("Model", {"riskTier": 4}, "spec.riskTier"),
        ("Model", {"riskTier": "2"}, "spec.riskTier"),
        ("Model", {"trainedOn": ["featureset:x"]}, "spec.trainedOn[0]"),
        ("Model", {"consumesFeatures": ["dataset:x"]}, "spec.consumesFeatures[0]"),
        ("Model", {"consumesFeatures": [{"features": ["a"]}]}, "spec.consumesFeatures[0].featureSet"),
        ("Model", {"modelCard": "../../etc/passwd"}, "spec.modelCard"),
        ("Model", {"modelCard": "https://x/card.md"}, "spec.modelCard"),
        ("Model", {"trainedon": ["x"]}, "spec"),
        ("FeatureSet", {"ttl": "24 hours"}, "spec.ttl"),
        ("FeatureSet", {"ttl": -1}, "spec.ttl"),
        ("FeatureSet", {"online": "yes"}, "spec.online"),
        ("FeatureSet", {"entities": [{"name": "c"}]}, "spec.entities[0].joinKeys"),
        (
            "FeatureSet",
            {"features": [{"name": "a", "type": "x"}, {"name": "a", "type": "y"}]},
            "spec.features[1].name",
        ),
        ("FeatureSet", {"features": [{"name": "bad name", "type": "x"}]}, "spec.features[0].name"),
        ("Pipeline", {"type": "etl"}, "spec.type"),
        ("Pipeline", {"schedule": "every day"}, "spec.schedule"),
        ("Pipeline", {"outputs": ["model:m"]}, "spec.outputs[0]"),
        ("Dataset", {"classification": "secret"}, "spec.classification"),
        ("Dataset", {"uri": "javascript:alert(1)"}, "spec.uri"),
        ("Dataset", {"schema": [{"name": "a"}]}, "spec.schema[0].type"),
    ],
)
def test_ml_kind_invalid(kind, change, field):
    assert field in fields(entity(kind, {**VALID[kind], **change}))


def test_ml_kind_accepted_variants():
    assert check(entity("FeatureSet", {**VALID["FeatureSet"], "ttl": "0"})) == []
    assert check(entity("FeatureSet", {**VALID["FeatureSet"], "ttl": 0})) == []
    assert check(entity("FeatureSet", {**VALID["FeatureSet"], "ttl": "1h30m"})) == []
    assert check(entity("Pipeline", {**VALID["Pipeline"], "schedule": "@daily"})) == []


def test_registered_model_name_and_conflict():
    data = entity("Model", annotations={"mlflow.org/registered-model": "other"})
    assert fields(data) == {"spec.mlflow.registeredModel"}
    spec = {k: v for k, v in VALID["Model"].items() if k != "mlflow"}
    data = entity("Model", spec, annotations={"mlflow.org/registered-model": "fraud"})
    assert check(data) == [] and registered_model_name(data) == "fraud"


def test_collects_all_errors_with_lines():
    text = (
        "apiVersion: plinth.dev/v1alpha1\nkind: Model\nmetadata:\n  name: bad name\n  tags: [Bad]\n"
        "spec:\n  riskTier: 7\n  trainedOn: [x y]\n"
    )
    (doc,), _ = load_documents(text, "m.yaml")
    errors = {e.field: e.line for e in validate_entity(doc)}
    assert errors == {
        "metadata.name": 4,
        "metadata.tags[0]": 5,
        "spec.owner": 6,
        "spec.riskTier": 7,
        "spec.trainedOn[0]": 8,
    }


def test_normalize_fills_defaults_without_mutating():
    data = entity("Component")
    out = normalize(data)
    assert out["metadata"]["namespace"] == "default" and out["metadata"]["tags"] == []
    assert "namespace" not in data["metadata"]


def test_template_owner_is_lenient_like_backstage():
    spec = {**VALID["Template"], "owner": "web@example.com"}
    assert check(entity("Template", spec)) == []
