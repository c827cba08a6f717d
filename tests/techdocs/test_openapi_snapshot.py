"""The platform's OpenAPI schema: docs/openapi.yaml is the committed snapshot of the live schema, and every
docs endpoint carries a description and an example."""

import difflib
from pathlib import Path

import yaml

from portal.techdocs.management.commands.techdocs import generate_openapi

SNAPSHOT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


def test_schema_matches_the_committed_snapshot():
    """Fails on any unintended API change. If the change is intended:
    `python manage.py techdocs export-openapi` and commit docs/openapi.yaml."""
    live = generate_openapi()
    stored = SNAPSHOT.read_text() if SNAPSHOT.exists() else ""
    if live != stored:
        diff = "\n".join(list(difflib.unified_diff(stored.splitlines(), live.splitlines(), "docs/openapi.yaml",
                                                   "live schema", lineterm=""))[:300])
        raise AssertionError("The API schema changed. If intended, run `python manage.py techdocs export-openapi` "
                             "and commit docs/openapi.yaml.\n" + diff)


def test_docs_endpoints_have_descriptions_and_examples():
    schema = yaml.safe_load(generate_openapi())
    ops = [(path, method, op) for path, item in schema["paths"].items() if "/techdocs/" in path
           for method, op in item.items() if method in {"get", "post"}]
    assert len(ops) == 6
    for path, method, op in ops:
        assert op.get("description") and op.get("summary"), (path, method)
        examples = [c.get("examples") for r in op["responses"].values() for c in (r.get("content") or {}).values()]
        assert any(examples), (path, method)


def test_every_operation_sits_in_one_described_section_of_the_reference():
    """Redoc and Swagger UI group operations by tag: none may fall into drf-spectacular's default 'v1' pile."""
    from portal.core.api import API_SECTIONS

    schema = yaml.safe_load(generate_openapi())
    sections = [t["name"] for t in schema["tags"]]
    assert sections == [name for name in API_SECTIONS if name in sections] and all(t["description"] for t in schema["tags"])
    placed = {}
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict):
                assert len(op["tags"]) == 1 and op["tags"][0] in sections, (method, path, op["tags"])
                placed.setdefault(op["tags"][0], []).append(path)
    assert set(placed) == set(sections)
    assert "/api/v1/lineage" in placed["lineage"] and "/api/v1/entities" in placed["catalog"]
    assert "/api/v1/tokens" in placed["accounts"]


def test_an_operation_with_no_section_fails_the_schema_rather_than_landing_unsorted():
    import pytest

    from portal.core.api import postprocess_tags

    schema = {"paths": {"/api/v1/new-thing": {"get": {"tags": ["v1"], "responses": {}}}}}
    with pytest.raises(ValueError, match=r"GET /api/v1/new-thing has no section"):
        postprocess_tags(schema, None, None, True)
