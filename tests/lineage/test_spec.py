"""The compiled spec check (fastjsonschema) and the naming one (jsonschema) agree on the spec's own facet
examples, and on a broken copy of each; naming and credential stripping follow OpenLineage's naming spec."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.lineage import events, spec
from tests.lineage.conftest import SPEC


def _examples():
    for folder in sorted((SPEC / "tests").iterdir()) if (SPEC / "tests").is_dir() else []:
        place = next((p for suffix, p in spec._PLACES if folder.name.endswith(suffix)), None)
        for path in sorted(folder.glob("*.json")):
            yield pytest.param(place, path, id=f"{folder.name}/{path.name}")


@pytest.mark.parametrize("place,path", list(_examples()))
def test_fast_and_full_checks_agree_on_the_specs_facet_examples(place, path):
    compiled = spec.load()
    document = json.loads(path.read_text())
    (name, facet), = document.items()
    checker = compiled.facets.get((place, name))
    if checker is None:
        pytest.skip(f"{name} has no standard schema for {place}")
    facet = {"_producer": "https://example.org/p", "_schemaURL": "https://example.org/s", **facet}
    assert checker.errors({name: facet}) == [], path
    broken = {**facet, "_producer": 42}
    fast_refuses = bool(checker.errors({name: broken}))
    full_refuses = bool(list(checker.full.iter_errors({name: broken})))
    assert fast_refuses and full_refuses


@pytest.mark.parametrize("namespace,name,expected", [
    ("postgresql://etl:pw@DB.Internal:5432/", "shop.public.orders", ("postgres://db.internal:5432", "shop.public.orders")),
    ("s3a://Lake", "/marts/orders", ("s3://lake", "marts/orders")),
    ("abfs://container@account.dfs.core.windows.net", "/x", ("abfss://container@account.dfs.core.windows.net", "x")),
    ("postgres://etl@db:5432", "shop.public.t", ("postgres://db:5432", "shop.public.t")),
    ("bigquery", "project.dataset.table", ("bigquery", "project.dataset.table")),
    ("file://", "/data/orders.csv", ("file://", "/data/orders.csv")),
])
def test_dataset_naming_is_normalised(namespace, name, expected):
    assert events.normalise_dataset(events.strip_credentials(namespace), name) == expected


@pytest.mark.parametrize("raw,clean", [
    ("postgres://user:secret@host:5432", "postgres://host:5432"),
    ("jdbc:mysql://root:pw@db:3306/sales?password=pw&ssl=true", "jdbc:mysql://db:3306/sales?password=&ssl=true"),
    ("https://lake.blob.core.windows.net/c?sv=2020&sig=abcdef", "https://lake.blob.core.windows.net/c?sv=2020&sig="),
    ("s3://bucket/path", "s3://bucket/path"),
    ("abfss://container@account.dfs.core.windows.net", "abfss://container@account.dfs.core.windows.net"),
])
def test_credentials_are_stripped_from_urls(raw, clean):
    assert events.strip_credentials(raw) == clean


# -- remembering valid facets (spec.Checker.errors_memo) --------------------------------------------------

_scalar = (st.integers(min_value=-3, max_value=3) | st.sampled_from([True, False, None, 1.0, 0.0, -0.0, 1.5, "1", "",
                                                                     "x", 2 ** 62]))
_metrics = st.fixed_dictionaries(
    {"_producer": st.sampled_from(["https://example.org/p", 1, True]),
     "_schemaURL": st.just("https://example.org/s")},
    optional={"rowCount": _scalar, "bytes": _scalar, "fileCount": _scalar,
              "columnMetrics": st.dictionaries(st.sampled_from(["a", "b"]), st.dictionaries(
                  st.sampled_from(["nullCount", "distinctCount", "sum", "min", "max", "count"]), _scalar,
                  max_size=3), max_size=2)})


@given(st.lists(_metrics, min_size=1, max_size=12))
def test_a_remembered_valid_facet_never_lets_a_different_one_through(documents):
    """Whatever was checked (and remembered) before — including facets equal in Python but not in JSON
    (True == 1 == 1.0, 0.0 == -0.0) — errors_memo answers exactly as the plain check, field path and
    message included. Values come from orjson, as the memo is used only for bodies orjson parsed."""
    checker = spec.load().facets[("facets:dataset", "dataQualityMetrics")]
    checker.valid.clear()
    for document in documents * 2:
        facet = {"dataQualityMetrics": orjson.loads(orjson.dumps(document))}
        expected = [(list(e.absolute_path), e.message) for e in checker.errors(facet)]
        got = [(list(e.absolute_path), e.message) for e in checker.errors_memo(facet)]
        assert got == expected


@pytest.mark.django_db
def test_a_facet_once_valid_is_refused_when_only_a_type_changes(api):
    """Through the API: the same event with `rowCount: 1` (stored), then `rowCount: true` (1 == True in Python) → 400 naming
    the field, as without the memo."""
    from portal.lineage.models import Event
    from tests.lineage.conftest import facet, post, run_event

    good = run_event(outputs=[("s3://b", "t")])
    good["outputs"][0]["facets"] = {"dataQualityMetrics": facet(rowCount=1, columnMetrics={})}
    assert post(api, good).status_code == 201
    bad = json.loads(json.dumps(good))
    bad["eventTime"] = "2026-01-02T00:00:00Z"
    bad["outputs"][0]["facets"]["dataQualityMetrics"]["rowCount"] = True
    response = post(api, bad)
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("outputs[0].facets.dataQualityMetrics.rowCount: ")
    assert Event.objects.count() == 1
