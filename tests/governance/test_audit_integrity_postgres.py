"""The audit trail's filters, verify and exports on PostgreSQL (run by `make test`'s production-profile
pass): created_at compared as text under the database's collation, the trigger bypassed with ALTER TABLE."""

import pytest

from tests.governance import test_audit_integrity as integrity

pytestmark = [pytest.mark.prod_smoke, pytest.mark.django_db, pytest.mark.usefixtures("postgres_only")]


def test_since_and_until_on_postgresql(monkeypatch, users, as_user):
    integrity._timed_events(monkeypatch)
    grace = as_user(users["grace"])
    for params, expected in integrity.TIME_CASES:
        response = grace.get("/api/v1/audit-events", {"action": "test.timed", **params})
        assert response.status_code == 200, (params, response.content)
        assert [integrity._nth(item["target"]) for item in response.json()["items"]] == expected, params


def test_the_page_and_its_exports_on_postgresql(monkeypatch, users, as_user):
    integrity.test_the_page_and_its_exports_filter_by_the_same_moments(monkeypatch, users, as_user)


def test_out_of_range_filters_on_postgresql(users, as_user):
    grace = as_user(users["grace"])
    for params in ({"after": "99999999999999999999"}, {"request": "99999999999999999999"}):
        response = grace.get("/api/v1/audit-events", params)
        assert response.status_code in (200, 400), (params, response.content)
        if response.status_code == 200:
            assert response.json()["items"] == []


@pytest.mark.parametrize(("column", "value"), [("created_at", "2001-01-01T00:00:00.000000+00:00"), ("actor", "m")])
def test_verify_checks_the_columns_on_postgresql(column, value):
    integrity.test_verify_notices_a_column_that_differs_from_the_hashed_payload(column, value)


def test_a_complete_export_on_postgresql(tmp_path, capsys, demo_org):
    integrity.test_verify_file_fails_when_an_event_is_deleted_from_a_complete_export(tmp_path, capsys)


def test_a_filtered_export_on_postgresql(tmp_path, capsys, users, as_user):
    integrity.test_a_filtered_page_export_says_what_it_cannot_show(tmp_path, capsys, users, as_user)


def test_the_csv_export_on_postgresql(users, as_user):
    integrity.test_every_cell_of_the_csv_export_is_safe_in_a_spreadsheet(users, as_user)
