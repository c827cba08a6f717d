"""Relation derivation table."""

import pytest

from catalog.descriptors.refs import EntityRef
from catalog.descriptors.relations import RELATION_PAIRS, derive_relations, inverse


def R(ref):
    kind, rest = ref.split(":")
    ns, name = rest.split("/")
    return EntityRef(kind, ns, name)


TABLE = [
    (
        "Component",
        {
            "owner": "team-a",
            "system": "s",
            "subcomponentOf": "p",
            "dependsOn": ["resource:db"],
            "dependencyOf": ["component:x"],
            "providesApis": ["a"],
            "consumesApis": ["ops/b"],
        },
        [
            ("ownedBy", "group:ns1/team-a"),
            ("partOf", "system:ns1/s"),
            ("partOf", "component:ns1/p"),
            ("providesApi", "api:ns1/a"),
            ("consumesApi", "api:ops/b"),
            ("dependsOn", "resource:ns1/db"),
            ("dependencyOf", "component:ns1/x"),
        ],
    ),
    (
        "API",
        {"owner": "user:jane", "system": "s"},
        [("ownedBy", "user:ns1/jane"), ("partOf", "system:ns1/s")],
    ),
    ("Resource", {"owner": "o", "system": "s"}, [("ownedBy", "group:ns1/o"), ("partOf", "system:ns1/s")]),
    ("System", {"owner": "o", "domain": "d"}, [("ownedBy", "group:ns1/o"), ("partOf", "domain:ns1/d")]),
    (
        "Domain",
        {"owner": "o", "subdomainOf": "top"},
        [("ownedBy", "group:ns1/o"), ("partOf", "domain:ns1/top")],
    ),
    (
        "User",
        {"memberOf": ["a", "default/b"]},
        [("memberOf", "group:ns1/a"), ("memberOf", "group:default/b")],
    ),
    (
        "Group",
        {"type": "team", "parent": "org", "children": ["c1"], "members": ["jane"]},
        [("childOf", "group:ns1/org"), ("parentOf", "group:ns1/c1"), ("hasMember", "user:ns1/jane")],
    ),
    ("Location", {"targets": ["./x.yaml"]}, []),
    ("Template", {"owner": "o", "type": "t", "steps": []}, [("ownedBy", "group:ns1/o")]),
    (
        "Model",
        {
            "owner": "o",
            "system": "s",
            "consumesFeatures": ["fs", {"featureSet": "fs2", "features": ["f"]}],
            "trainedOn": ["d1"],
        },
        [
            ("ownedBy", "group:ns1/o"),
            ("partOf", "system:ns1/s"),
            ("consumesFeatures", "featureset:ns1/fs"),
            ("consumesFeatures", "featureset:ns1/fs2"),
            ("trainedOn", "dataset:ns1/d1"),
        ],
    ),
    ("FeatureSet", {"owner": "o", "system": "s"}, [("ownedBy", "group:ns1/o"), ("partOf", "system:ns1/s")]),
    (
        "Pipeline",
        {"owner": "o", "type": "training", "inputs": ["a"], "outputs": ["b"]},
        [
            ("ownedBy", "group:ns1/o"),
            ("consumesDataset", "dataset:ns1/a"),
            ("producesDataset", "dataset:ns1/b"),
        ],
    ),
    ("Dataset", {"owner": "o", "system": "s"}, [("ownedBy", "group:ns1/o"), ("partOf", "system:ns1/s")]),
]


@pytest.mark.parametrize("kind,spec,expected", TABLE, ids=[t[0] for t in TABLE])
def test_derive_relations(kind, spec, expected):
    entity = {"kind": kind, "metadata": {"name": "x", "namespace": "ns1"}, "spec": spec}
    assert derive_relations(entity) == [(t, R(r)) for t, r in expected]


def test_bad_refs_unknown_kinds_and_duplicates_are_skipped():
    entity = {
        "kind": "Component",
        "metadata": {"name": "x"},
        "spec": {"owner": "bad owner", "dependsOn": ["nokind", "resource:a", "resource:a"]},
    }
    assert derive_relations(entity) == [("dependsOn", R("resource:default/a"))]
    assert derive_relations({"kind": "Nope", "spec": {"owner": "x"}}) == []


def test_inverse_both_ways():
    for a, b in RELATION_PAIRS.items():
        assert inverse(a) == b and inverse(b) == a
    assert inverse("dependencyOf") == "dependsOn" and inverse("trainedOn") == "trainedModel"
    with pytest.raises(ValueError):
        inverse("nope")
