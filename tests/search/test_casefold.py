"""Case-insensitive matching beyond ASCII, the same on SQLite and PostgreSQL: "ÖLMODELL" finds
"Ölmodell", "Ärger", "ärger" and "ÄRGER" find each other, Greek capitals their lowercase. Full case
folding (ß = ss) is done by neither backend: docs/search.md, "Limits", says so, and nothing here
pretends otherwise."""

from __future__ import annotations

import pytest
from django.db import connection

from portal.search import index, selectors
from portal.search.registry import Document

pytestmark = pytest.mark.django_db

DOCS = {
    "model:default/oel": ("Ölmodell", "Predicts Ärger in the pipeline."),
    "model:default/strasse": ("Straßenbahn delays", "Forecasts for the straße network."),
    "model:default/upper": ("GROSSHANDEL", "ÄRGER ahead: ǅUNGLA and ΣΟΦΙΑ."),
}


def _ascii_only_lowercase() -> bool:
    """PostgreSQL's `simple` text search lowercases by the database's LC_CTYPE: in a C/POSIX database
    (the test cluster's initdb sets no locale) only ASCII letters. Not fixed yet: see docs/search.md."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cur:
        cur.execute("SHOW lc_ctype")
        return cur.fetchone()[0] in ("C", "POSIX")


@pytest.fixture
def folded(users):
    if _ascii_only_lowercase():
        pytest.skip("this PostgreSQL database has a C LC_CTYPE, which lowercases ASCII only (docs/search.md)")
    docs = [Document(key=key, kind="model", kind_label="Model", name=f"casefold-doc-{i}", url=f"/m/{i}/",
                     title=title, description=description, owner="fraud-ml")
            for i, (key, (title, description)) in enumerate(DOCS.items())]
    index.update("catalog", changed=list(DOCS), documents=docs)
    selectors.clear_cache()
    yield users
    selectors.clear_cache()


def _found(user, text: str) -> set[str]:
    """What a search finds, matched as typed (not by a spelling correction, which would hide a miss)."""
    results = selectors.search(user, text, limit=50)
    assert results.corrected == "", results.corrected
    return {h.key for h in results.hits} & set(DOCS)


@pytest.mark.parametrize(("text", "expected"), [
    ("ÖLMODELL", {"model:default/oel"}),
    ("ölmodell", {"model:default/oel"}),
    ("straße", {"model:default/strasse"}),
    ("straßenbahn", {"model:default/strasse"}),
    ("Ärger", {"model:default/oel", "model:default/upper"}),
    ("ärger", {"model:default/oel", "model:default/upper"}),
    ("ÄRGER", {"model:default/oel", "model:default/upper"}),
    ("grosshandel", {"model:default/upper"}),
    ("σοφια", {"model:default/upper"}),
    ("ΣΟΦΙΑ", {"model:default/upper"}),
    ('"ärger ahead"', {"model:default/upper"}),
])
def test_non_ascii_case_is_folded(folded, text, expected):
    assert _found(folded["grace"], text) == expected


def test_typeahead_folds_too(folded):
    _, groups = selectors.typeahead(folded["grace"], "ÖLMOD")
    assert "model:default/oel" in {h.key for _, hits in groups for h in hits}
