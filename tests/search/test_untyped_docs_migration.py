"""search 0011: docs pages indexed before docs became untyped (search.index.UNTYPED_KINDS) kept their
entity's kind as type, so the Type facet still offered "component" for them. The migration clears the
type of those rows; entities keep theirs. The facet reads only search_searchdocument.type on both engines."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE, AFTER = ("search", "0010_document_indexed_at"), ("search", "0011_untyped_docs_rows")


def _migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def _row(apps, key: str, kind: str, type_: str) -> int:
    SearchDocument = apps.get_model("search", "SearchDocument")
    return SearchDocument.objects.create(source="docs" if kind == "doc" else "catalog", key=key, kind=kind,
                                         kind_label=kind.title(), name=key, type=type_, url=f"/{key}").pk


@pytest.mark.django_db(transaction=True)
def test_old_docs_rows_lose_their_type():
    apps = _migrate(BEFORE)
    try:
        doc = _row(apps, "doc:default/payments/index", "doc", "component")
        entity = _row(apps, "component:default/payments", "component", "service")
        untyped = _row(apps, "doc:default/fresh/index", "doc", "")

        apps = _migrate(AFTER)
        types = dict(apps.get_model("search", "SearchDocument").objects.values_list("pk", "type"))
        assert types[doc] == "", "an old docs row must not feed the Type facet"
        assert types[entity] == "service", "an entity keeps its type"
        assert types[untyped] == ""
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())
