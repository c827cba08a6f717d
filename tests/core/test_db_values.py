"""portal.core.db's long lists as one parameter (`values_in`, `values_table`, `pg_array`): every value
comes back as it was sent, whatever characters it holds, on both engines."""

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
