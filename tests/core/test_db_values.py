"""portal.core.db's long lists as one parameter (`values_in`, `values_table`, `pg_array`) and many rows
in few statements (`execute_values`): every value comes back as it was sent, whatever characters it
holds, on both engines."""

import pytest
from django.db import connection

from catalog.models import Entity
from portal.core.db import pg_array, values_in, values_table

AWKWARD = ['a"b', "c\\d", "e'f", "", " spaced ", "{x,y}", "NULL", "ü ñ", "tab\there", "line\nbreak", "\\\"", "😀"]


def _check_round_trip():
    with connection.cursor() as cursor:
        sql, params = values_table(AWKWARD, text=True)
        cursor.execute(f"SELECT value FROM {sql}", params)  # noqa: S608
        assert [row[0] for row in cursor.fetchall()] == AWKWARD
        sql, params = values_table([3, 1, 2])
        cursor.execute(f"SELECT value FROM {sql}", params)  # noqa: S608
        assert [row[0] for row in cursor.fetchall()] == [3, 1, 2]
    made = [Entity.objects.create(ref=f"component:default/{n}", kind="Component", kind_key="component",
                                  namespace="default", name=n, name_key=n, data={}) for n in ("one", "two", "three")]
    assert set(Entity.objects.filter(pk__in=values_in([made[0].pk, made[2].pk])).values_list("name", flat=True)) == {
        "one", "three"}
    refs = ["component:default/two", 'component:default/"two"', "component:default/two\\"]
    assert list(Entity.objects.filter(ref__in=values_in(refs, text=True)).values_list("name", flat=True)) == ["two"]
    assert not Entity.objects.filter(pk__in=values_in([])).exists()


@pytest.mark.django_db
def test_long_lists_round_trip_on_sqlite():
    _check_round_trip()


@pytest.mark.prod_smoke
@pytest.mark.django_db
@pytest.mark.usefixtures("postgres_only")
def test_long_lists_round_trip_on_postgresql():
    _check_round_trip()
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::text[], %s::bigint[]", [pg_array(AWKWARD, text=True), pg_array([5, -1, 0])])
        assert cursor.fetchone() == (AWKWARD, [5, -1, 0])


def _check_execute_values():
    """More rows than one statement takes, awkward text, NULLs, and an upsert tail: every row lands once
    with its own values (on PostgreSQL in several statements)."""
    from catalog.models import EntityTag
    from portal.core.db import VALUES_ROWS, execute_values

    entity = Entity.objects.create(ref="component:default/rows", kind="Component", kind_key="component",
                                   namespace="default", name="rows", name_key="rows", data={})
    tags = [f"t{i:04d}{AWKWARD[i % len(AWKWARD)]}" for i in range(VALUES_ROWS * 2 + 7)]
    head = f"INSERT INTO {connection.ops.quote_name(EntityTag._meta.db_table)} (entity_id, tag) VALUES "  # noqa: S608
    execute_values(head, [(entity.pk, tag) for tag in tags])
    assert sorted(EntityTag.objects.filter(entity=entity).values_list("tag", flat=True)) == sorted(tags)
    # Rows already there (the unique (entity, tag) constraint) are skipped by the tail; a new one lands.
    execute_values(head, [(entity.pk, tag) for tag in [*tags[:3], "fresh"]], " ON CONFLICT DO NOTHING")
    execute_values(head, [])  # nothing to write: no statement
    assert EntityTag.objects.filter(entity=entity).count() == len(tags) + 1


@pytest.mark.django_db
def test_execute_values_writes_every_row_on_sqlite():
    _check_execute_values()


@pytest.mark.prod_smoke
@pytest.mark.django_db
@pytest.mark.usefixtures("postgres_only")
def test_execute_values_writes_every_row_on_postgresql():
    _check_execute_values()
