"""Migrations: none missing, every one reversible, and a populated database survives a trip back to
the previous release's schema (and further) and forward again, on SQLite and on PostgreSQL.

"The previous release" is each app's newest migration but one (apps with a single migration have no
earlier schema of their own). The populated database holds what the portal's journeys write: the demo
organisation and catalog (entities, relations, tags, search documents), a registered docs site with its
pages, an approval request past its gates with audit events, and a finished scaffolder dry run.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import RunPython, RunSQL, SeparateDatabaseAndState
from django.test import Client

from tests.factories import write_files

ROOT = Path(__file__).resolve().parents[2]
# The project's own apps: every one of their migrations must reverse.
PROJECT_APPS = ("accounts", "core", "catalog", "search", "techdocs", "scaffolder", "governance", "insights", "feedback",
                "lineage", "deployments", "scorecards", "slo", "costs", "incidents")
# Tables left out of the data digest: the search cache key (a random number on purpose), the FTS5
# table and its shadow tables (rebuilt from the documents; checked by searching instead).
UNDIGESTED_PREFIXES = ("search_fts", "search_searchindexversion")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.prod_smoke),
]


def _migrations_of_project():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return loader, sorted(key for key in loader.disk_migrations if key[0] in PROJECT_APPS)


def _operations(operations):
    """Every operation, with SeparateDatabaseAndState opened up to what runs on the database."""
    for op in operations:
        if isinstance(op, SeparateDatabaseAndState):
            yield from _operations(op.database_operations)
            yield from _operations(op.state_operations)
        else:
            yield op


@pytest.mark.django_db
def test_no_model_change_is_missing_a_migration():
    """`makemigrations --check --dry-run` finds nothing to write."""
    out = io.StringIO()
    try:
        call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)
    except SystemExit as exc:  # --check exits 1 when a migration is missing
        pytest.fail(f"makemigrations --check found missing migrations:\n{out.getvalue()}\n(exit {exc.code})")


def test_every_migration_is_reversible_or_says_why_not():
    """RunSQL/RunPython need reverse code; an irreversible migration must carry `irreversible = "<reason>"`."""
    loader, keys = _migrations_of_project()
    assert len(keys) >= len(PROJECT_APPS)
    problems = []
    for key in keys:
        migration = loader.disk_migrations[key]
        reason = getattr(migration, "irreversible", "")
        for op in _operations(migration.operations):
            if isinstance(op, RunPython | RunSQL) and not op.reversible and not reason:
                problems.append(f"{key[0]}.{key[1]}: {op.describe()} has no reverse and no `irreversible` reason")
            elif not isinstance(op, RunPython | RunSQL) and not op.reversible and not reason:
                problems.append(f"{key[0]}.{key[1]}: {op.describe()} is irreversible without a reason")
    assert not problems, "\n".join(problems)


# -- the populated round trip -------------------------------------------------------------------

DOCS_REPO = {
    "catalog-info.yaml": (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: migration-docs\n"
        "  title: Migration docs\n  annotations: {plinth.dev/techdocs-ref: 'dir:./docs'}\n"
        "spec: {type: service, lifecycle: production, owner: fraud-ml}\n"
    ),
    "docs/index.md": "# Migration docs\n\nThe quokkaburrow runbook.\n\n## Steps\n\n1. Back\n2. Forth\n",
    "docs/more.md": "# More\n\nSecond page.\n",
}


def _populate(tmp_path: Path, settings) -> dict:
    """Write what the journeys write, through the services; returns the users and refs to check."""
    from catalog import demo as catalog_demo
    from catalog import services as catalog_services
    from catalog.models import Entity, ModelVersion
    from portal.accounts import demo as org_demo
    from portal.governance import services as governance
    from portal.scaffolder import executor, forms
    from portal.scaffolder import services as scaffolder
    from portal.scaffolder.templates import from_entity
    from portal.techdocs import services as techdocs

    org = org_demo.load_org()
    assert not catalog_demo.load_catalog().errors
    repo = write_files(tmp_path / "docs-repo", DOCS_REPO)
    plan = catalog_services.location_register(target=str(repo / "catalog-info.yaml"), actor=None, file_roots=None)
    assert not plan.errors, [str(e) for e in plan.errors]
    site = techdocs.entity_docs_build(entity=Entity.objects.get(ref="component:default/migration-docs"))
    assert site, "the docs site was built"

    detector = Entity.objects.get(ref="model:default/fraud-detector")
    for version, aliases in (("2", ["champion"]), ("3", ["challenger"])):
        ModelVersion.objects.create(entity=detector, version=version, version_number=int(version),
                                    aliases=aliases, metrics={"auc": 0.9 + int(version) / 100}, status="READY")
    alice = org["users"]["alice"]
    request = governance.request_create(actor=alice, action="promote-model-version", target=detector.ref,
                                        params={"version": "3", "alias": "champion"}, justification="better AUC")
    governance.request_evaluate_gates(request_id=request.pk)

    settings.PLINTH_SCAFFOLDER_ROOT = tmp_path / "scaffolder"
    template_entity = Entity.objects.get(ref="template:default/ml-model-service")
    template = from_entity(template_entity)
    pages = forms.pages(template, alice)
    values = forms.with_defaults(pages, {"name": "migration-model", "owner": "fraud-ml", "modelType": "classifier"})
    parameters, secrets = forms.split_secrets(pages, values)
    run = scaffolder.run_create(template=template, entity=template_entity, actor=alice, parameters=parameters,
                                secret_values=secrets, dry_run=True, owner_team=forms.owner_team(pages, values, alice))
    executor.execute(scaffolder.run_claim(run.pk))
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    return {"users": org["users"], "request": request.pk, "run": run.uid}


def _project_tables() -> list[str]:
    prefixes = tuple(f"{app}_" for app in PROJECT_APPS)
    return sorted(t for t in connection.introspection.table_names()
                  if t.startswith(prefixes) and not t.startswith(UNDIGESTED_PREFIXES))


def _snapshot() -> dict[str, tuple[list[str], list[tuple]]]:
    """Per project table: its column names and its rows."""
    out = {}
    with connection.cursor() as cur:
        for table in _project_tables():
            cur.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")  # noqa: S608 (introspected names)
            out[table] = ([c[0] for c in cur.description], [tuple(map(_plain, row)) for row in cur.fetchall()])
    return out


def _digest(snapshot: dict, columns: dict[str, list[str]] | None = None) -> dict[str, tuple[int, str]]:
    """Per project table: its row count and a hash of every row (columns by name, rows sorted), so a
    table remade with its columns in another order still compares equal, and any lost value does not.
    `columns`: only these columns of each table (those an earlier schema has)."""
    out = {}
    for table, (names, rows) in snapshot.items():
        keep = set(names if columns is None else columns.get(table, names))
        lines = sorted(repr(sorted((n, v) for n, v in zip(names, row, strict=True) if n in keep)) for row in rows)
        out[table] = (len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest())
    return out


def _plain(value):
    return bytes(value) if isinstance(value, memoryview) else value


def _leaf_targets(loader) -> dict[str, str]:
    return {app: name for app, name in loader.graph.leaf_nodes() if app in PROJECT_APPS}


def _previous(loader, app: str, name: str) -> tuple[str, str | None]:
    parents = [p for p in loader.graph.node_map[(app, name)].parents if p.key[0] == app]
    return (app, parents[0].key[1] if parents else None)


def _consistent(loader, targets: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
    """The targets, each app stepped further back while its target needs a migration of another app
    beyond that app's target (lineage 0004 needs catalog 0013, catalog's newest: with catalog back at
    0012, lineage goes back to 0003) — one plan must run only backwards."""
    wanted = dict(targets)

    def within(app: str, name: str) -> bool:
        target = wanted.get(app)
        return target is not None and (app, name) in loader.graph.forwards_plan((app, target))

    changed = True
    while changed:
        changed = False
        for app, name in list(wanted.items()):
            if name is None:
                continue
            needs = loader.graph.forwards_plan((app, name))
            if any(other in wanted and other != app and not within(other, dep) for other, dep in needs):
                wanted[app] = _previous(loader, app, name)[1]
                changed = True
    return [(app, wanted[app]) for app, _ in targets]


def _migrate(targets: list[tuple[str, str | None]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def _check_the_portal_works(data: dict, tmp_path: Path) -> None:
    """Search finds an entity and a docs page, the docs page renders, the run and the request show,
    a new registration is indexed, and `audit verify` passes (chain and triggers)."""
    alice = data["users"]["alice"]
    client = Client()
    client.force_login(alice)
    hits = client.get("/api/v1/search", {"q": "fraud detector"}).json()["items"]
    assert "model:default/fraud-detector" in [h["key"] for h in hits]
    assert client.get("/api/v1/search", {"q": "quokkaburrow"}).json()["totalItems"] >= 1
    page = client.get("/docs/component/default/migration-docs/")
    assert page.status_code == 200 and "quokkaburrow" in page.content.decode()
    assert client.get(f"/create/runs/{data['run']}/").status_code == 200
    assert client.get(f"/reviews/requests/{data['request']}/").status_code == 200
    repo = write_files(tmp_path / "after", {"catalog-info.yaml": (
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: after-migrations}\n"
        "spec: {type: service, lifecycle: experimental, owner: fraud-ml}\n")})
    response = client.post("/api/v1/locations", {"target": str(repo / "catalog-info.yaml")},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    assert client.get("/api/v1/search", {"q": "after-migrations"}).json()["items"][0]["key"] == (
        "component:default/after-migrations")
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    assert "audit chain OK" in out.getvalue()


@pytest.fixture
def _no_broker(monkeypatch):
    """Work queued after commit stays queued (as with a broker that is down): this test runs gates and
    the scaffolder run in-process, and must leave no message for another test's worker."""
    monkeypatch.setattr("portal.governance.outbox.publish", lambda pk: False)
    monkeypatch.setattr("portal.techdocs.receivers.enqueue", lambda refs: None)
    monkeypatch.setattr("portal.scaffolder.services.enqueue", lambda run: None)


@pytest.mark.parametrize("backend_vendor", BACKENDS)
def test_a_populated_database_goes_back_to_earlier_schemas_and_forward_intact(
    backend_vendor, transactional_db, _no_broker, tmp_path, settings
):
    """Back to the previous release (every app's newest migration but one), forward: every row of every
    project table is as it was. The same from each app's first migration. Then every app to zero and
    forward on the populated database: the reverse SQL runs with data present, and the portal works."""
    if connection.vendor != backend_vendor:
        pytest.skip(f"runs on {backend_vendor}; this run uses {connection.vendor}")
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    data = _populate(tmp_path, settings)
    loader = MigrationLoader(connection)
    latest = sorted(_leaf_targets(loader).items())
    previous = _consistent(loader, [_previous(loader, app, name) for app, name in latest
                                    if _previous(loader, app, name)[1]])
    first = [(app, "0001_initial") for app, _ in previous]
    assert {app for app, _ in previous} >= {"catalog", "search", "core"}, previous
    before = _snapshot()
    counted = _digest(before)
    assert counted["catalog_entity"][0] > 20 and counted["core_auditevent"][0] > 3
    assert counted["techdocs_docpage"][0] >= 2 and counted["governance_policyresult"][0] >= 1
    try:
        for label, targets in (("the previous release", previous), ("each app's first migration", first)):
            _migrate(targets)
            # A table a later migration creates is gone at the earlier schema, and back empty after
            # (catalog_catalogstate, a cache key, below catalog 0002); so is a column a later migration
            # adds, back with that migration's fill (search_searchdocument.indexed_at, search 0010).
            # Every table and column that exists there keeps its rows and values, there (the counts) and
            # after the trip forward.
            there = _snapshot()
            columns = {t: names for t, (names, _) in there.items()}
            counts = {t: n for t, (n, _) in _digest(there).items()}
            assert counts == {t: n for t, (n, _) in _digest(before).items() if t in counts}, f"rows lost at {label}"
            _migrate(latest)
            after = _snapshot()
            assert after.keys() == before.keys()
            kept_after, kept_before = _digest(after, columns), _digest(before, columns)
            assert {t: kept_after[t] for t in counts} == {t: kept_before[t] for t in counts}, (
                f"data changed by the trip to {label} and back")
            _check_the_portal_works(data, tmp_path / label.replace(" ", "-"))
            before = _snapshot()
        _migrate([(app, None) for app in PROJECT_APPS])
        assert not _project_tables(), "every project table is gone at zero"
        _migrate(latest)
    finally:
        _migrate(latest)  # whatever failed, the next test gets the current schema
        # ... including apps outside PROJECT_APPS that a trip to zero took down with them (insights
        # depends on accounts): without this every later test of theirs found no tables.
        _migrate(sorted(MigrationLoader(connection).graph.leaf_nodes()))
    data = _populate(tmp_path / "again", settings)
    _check_the_portal_works(data, tmp_path / "from-zero")

