"""The compiled spec check (fastjsonschema) and the naming one (jsonschema) agree on the spec's own facet
examples, and on a broken copy of each; naming and credential stripping follow OpenLineage's naming spec."""

from __future__ import annotations

import json

import pytest

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
