"""On PostgreSQL a query word is a prefix (`churn:*`), and a GIN prefix match builds a bitmap of every
matching entry first (12 ms for "customer churn" at 250k documents, 2.5 ms for the two words matched
exactly). `PostgresBackend.expand` searches a prefix as the index's own words when it stands for few:
`search_lexeme` holds them, written with the documents (`after_insert`). These tests check that it
never changes what a search finds:

* the parser property the table relies on: a compound word's first part is always a word of the
  same document (hypothesis, on PostgreSQL's own parser);
* the table holds every word a prefix can reach, after small writes, a large registration and a rebuild;
* prefix and expansion find the same documents, word by word and as whole searches."""

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import services as catalog_services
from portal.search import index, selectors
from portal.search.backends import get_backend
from portal.search.backends import postgres as pg
from portal.search.backends.base import Spec
from portal.search.query import parse
from tests.factories import write_files

pytestmark = [pytest.mark.prod_smoke, pytest.mark.usefixtures("postgres_only"), pytest.mark.django_db]

# Words that share prefixes, compounds, and tokens that are not plain words (an e-mail address, a host,
# a file path, a version, accents, an underscore, a float), in titles, tags and descriptions.
ENTITIES = {
    "lexeme-one": ("Customer churn", ["customers", "k8s-gpu"], "churn-model-7 for cust@example.com on db.internal"),
    "lexeme-two": ("Customers-360 view", ["feature-store"], "custody /srv/data-lake/x.parquet v1.2.3 café x1e-5"),
    "lexeme-three": ("Churned accounts", ["uber"], "customer360 and customerid, customization 2024 churning über"),
    "lexeme-five": ("Feature_store sync", ["store"], "qqxvalue only here"),
    "lexeme-four": ("Risk score", ["risk-score"], "riskier risk-score-12 dbx db2 datastore on my-db.internal"),
}
PREFIXES = ["cu", "cust", "custo", "customer", "customers", "churn", "churne", "ch", "k8", "k8s", "gp", "feat",
            "feature", "store", "db", "dbx", "caf", "x1", "v1", "risk", "riskier", "score", "sc", "view", "acc",
            "zzz", "srv", "data", "lake", "ub", "uber", "churning", "qqx", "qqy", "my", "myd"]

QUALIFYING = ("ascii(word) BETWEEN 97 AND 122 AND (strpos(word, '-') = 0 OR word !~ "
              f"'{pg._COMPOUND}')")


def _descriptor(name: str, title: str, tags: list[str], description: str) -> str:
    return (f"---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
            f"  title: {title}\n  description: {description}\n  tags: [{', '.join(tags)}]\n"
            "spec: {type: service, lifecycle: production, owner: fraud-ml}\n")


def _register(tmp_path, entities=ENTITIES) -> None:
    text = "".join(_descriptor(name, *fields) for name, fields in entities.items())
    write_files(tmp_path, {"catalog-info.yaml": text})
    plan = catalog_services.location_register(target=str(tmp_path / "catalog-info.yaml"), actor=None, file_roots=None)
    assert not plan.errors, [str(e) for e in plan.errors]
    index.update("catalog", changed=[f"component:default/{name}" for name in entities])


def _missing_words() -> list[str]:
    """Words of the indexed documents a prefix can reach that `search_lexeme` lacks (must be none)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT word FROM ts_stat('SELECT tsv FROM {pg.DOC}') WHERE {QUALIFYING} "  # noqa: S608
                       f"EXCEPT SELECT word FROM {pg.LEXEME} ORDER BY 1")
        return [row[0] for row in cursor.fetchall()]


def _matches(tsquery: str) -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {pg.DOC} WHERE tsv @@ to_tsquery('simple', %s)", [tsquery])  # noqa: S608
        return {row[0] for row in cursor.fetchall()}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet="abcxyzé09-_.@/: ", max_size=40))
def test_a_compound_word_always_brings_its_first_part(text):
    """What lets the table leave compounds out: for every word of a text that looks like a compound
    (`_COMPOUND`, as PostgreSQL's regex reads it), the part before its first hyphen is a word of the
    same text, so a prefix that reaches the compound reaches a word the table holds."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT w FROM unnest(tsvector_to_array(to_tsvector('simple', %s))) AS w WHERE w ~ %s "
            "AND split_part(w, '-', 1) <> ALL (tsvector_to_array(to_tsvector('simple', %s)))",
            [text, pg._COMPOUND, text],
        )
        assert cursor.fetchall() == []


def test_the_table_holds_every_word_a_prefix_can_reach_after_each_kind_of_write(demo_org, tmp_path, monkeypatch,
                                                                                 django_capture_on_commit_callbacks):
    index.rebuild()
    assert _missing_words() == []  # the rebuild refills the table it truncated
    _register(tmp_path / "small")  # the incremental path: the ORM's inserts
    assert _missing_words() == []
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {pg.LEXEME} WHERE word IN ('customers', 'custody', 'riskier', 'churned')")  # noqa: S608
        assert cursor.fetchone()[0] == 4
        cursor.execute(f"SELECT word FROM {pg.LEXEME} WHERE strpos(word, '-') > 0")  # noqa: S608 (compounds are left out)
        assert [row[0] for row in cursor.fetchall()] == ["my-db.internal"]  # a host name is not a compound
    # A large registration takes the bulk path (COPY, ids drawn from the sequence).
    monkeypatch.setattr(index, "BULK_THRESHOLD", 3)
    many = {f"bulk-{i}": (f"Bulkword{i} ledger", [f"ledgertag{i}"], f"reconciliation{i}") for i in range(8)}
    with django_capture_on_commit_callbacks(execute=True):
        _register(tmp_path / "bulk", many)
    assert _missing_words() == []
    assert {"bulkword7", "ledgertag0", "reconciliation5"} <= set(get_backend().expand(
        ["bulkword7", "ledgertag0", "reconciliation5"]))


def test_a_prefix_and_its_expansion_find_the_same_documents(demo_org, tmp_path):
    _register(tmp_path)
    backend = get_backend()
    expansions = backend.expand(PREFIXES)
    spec = Spec(query=parse("x"), scope_sql="", scope_params=[], expansions=expansions)
    for prefix in PREFIXES:
        alternatives = pg._prefixed(spec, prefix)
        assert _matches(" | ".join(alternatives)) == _matches(f"{prefix}:*"), (prefix, alternatives)
    # The test can tell: most prefixes were expanded, into words and into none at all, and the ones
    # that reach a host, an e-mail address or too many words were not.
    assert {"churn", "churned", "churning"} <= set(expansions["churn"])
    assert "customers" in expansions["customers"] and expansions["qqx"] == ["qqxvalue"]
    assert expansions["zzz"] == expansions["qqy"] == [] and _matches("qqy:*") == set()
    assert {"cust", "db", "cu"}.isdisjoint(expansions)  # cust@example.com, db.internal, more than 8 words


def test_searches_find_the_same_with_and_without_expansion(demo_org, tmp_path, monkeypatch):
    _register(tmp_path)
    admin = get_user_model().objects.create_superuser("lexeme-admin", "lexeme-admin@example.com", "x")
    monkeypatch.setattr(selectors, "CACHE_SIZE", 0)
    queries = ["customer churn", "cust", "churn", "customers", "risk score", "riskier", "feature", "k8s gpu",
               '"customer churn"', "churn -customers", "cafe", "custo kind:component", "churnd", "lake data"]

    def outcome(query, fields):
        found = selectors.search(admin, query, fields=fields)
        return [(h.key, h.position) for h in found.hits], found.total, found.ranking, found.facets

    for fields in ("all", "names"):
        expanded = {q: outcome(q, fields) for q in queries}
        with monkeypatch.context() as m:
            m.setattr(pg.PostgresBackend, "expand", lambda self, prefixes: {})
            assert {q: outcome(q, fields) for q in queries} == expanded
    assert any(key == "component:default/lexeme-three" for key, _ in expanded["churn"][0])
