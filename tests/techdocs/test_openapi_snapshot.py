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
