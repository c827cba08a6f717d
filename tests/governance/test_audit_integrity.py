"""The audit trail's reads and proofs: since/until compare moments (not days), `audit verify` checks the
denormalised columns against the hashed payload, an export says what it holds so that a deleted event
is found offline, and every CSV cell is safe in a spreadsheet."""

from __future__ import annotations

import csv
import importlib
import io
import json
from datetime import datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from portal.core import audit
from portal.core.models import AuditEvent
from portal.core.spreadsheet import FORMULA_STARTS

pytestmark = pytest.mark.django_db

# The events of the time-filter tests: around a second and a day boundary (UTC).
MOMENTS = [
    "2026-12-07T10:12:26.500000+00:00",  # seq 1
    "2026-12-07T23:59:59.999999+00:00",  # seq 2
    "2026-12-08T00:00:00.000000+00:00",  # seq 3
    "2026-12-08T05:00:00.000000+00:00",  # seq 4
]


def _events(n: int = 5) -> None:
    for i in range(n):
        audit.audit_record(actor=None, action="test.event", target=f"thing:{i}", after={"i": i})


def _timed_events(monkeypatch) -> None:
    for i, at in enumerate(MOMENTS):
        with monkeypatch.context() as patch:
            patch.setattr(audit.timezone, "now", lambda at=at: datetime.fromisoformat(at))
            audit.audit_record(actor=None, action="test.timed", target=f"thing:{i}")


def _bypass(sql: str, params=()) -> None:
    """An attacker with raw database access lifts the append-only guard, changes rows, and restores it."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE core_auditevent DISABLE TRIGGER core_auditevent_append_only")
            cursor.execute(sql, params)
            cursor.execute("ALTER TABLE core_auditevent ENABLE TRIGGER core_auditevent_append_only")
            return
        cursor.execute("DROP TRIGGER core_auditevent_no_update")
        cursor.execute("DROP TRIGGER core_auditevent_no_delete")
        cursor.execute(sql, params)
    migration = importlib.import_module("portal.core.migrations.0002_audit_append_only")
    with connection.cursor() as cursor:
        for statement in migration.SQLITE_UP:
            cursor.execute(statement)


# -- since / until ----------------------------------------------------------------------------------

TIME_CASES = [
    # within a day: the time counts (the filter used to compare `2026-12-07 11:12:26+00:00` with
    # `2026-12-07T10:12:26…`, and the space sorts before the T whatever the time)
    ({"since": "2026-12-07T11:12:26Z"}, [2, 3, 4]),
    ({"until": "2026-12-07T11:12:26Z"}, [1]),
    ({"since": "2026-12-07T09:12:26Z"}, [1, 2, 3, 4]),
    ({"until": "2026-12-07T09:12:26Z"}, []),
    # around a second: since is inclusive, until exclusive, to the microsecond
    ({"since": "2026-12-07T10:12:26Z"}, [1, 2, 3, 4]),
    ({"since": "2026-12-07T10:12:26.500000Z"}, [1, 2, 3, 4]),
    ({"since": "2026-12-07T10:12:26.500001Z"}, [2, 3, 4]),
    ({"since": "2026-12-07T10:12:27Z"}, [2, 3, 4]),
    ({"until": "2026-12-07T10:12:26.5Z"}, []),
    ({"until": "2026-12-07T10:12:26.500001Z"}, [1]),
    ({"since": "2026-12-07T10:12:26", "until": "2026-12-07T10:12:27"}, [1]),  # naive: UTC
    # offsets are converted to UTC
    ({"since": "2026-12-07T15:42:26+05:30"}, [1, 2, 3, 4]),
    ({"since": "2026-12-07T16:12:26+05:00"}, [2, 3, 4]),
    ({"until": "2026-12-07T16:12:26+05:00"}, [1]),
    ({"until": "2026-12-07T05:12:27-05:00"}, [1]),
    # around midnight, also where the offset moves the date
    ({"until": "2026-12-08"}, [1, 2]),
    ({"since": "2026-12-08"}, [3, 4]),
    ({"until": "2026-12-08T00:00:00+00:00"}, [1, 2]),
    ({"until": "2026-12-08T00:00:00.000001Z"}, [1, 2, 3]),
    ({"since": "2026-12-07T23:59:59.999999Z", "until": "2026-12-08T00:00:00.000001Z"}, [2, 3]),
    ({"until": "2026-12-07T19:00:00-05:00"}, [1, 2]),
    ({"since": "2026-12-08T01:00:00+02:00"}, [2, 3, 4]),
    ({"since": "2026-12-07T19:00:00-05:00", "until": "2026-12-08T06:00:00.000001+01:00"}, [3, 4]),
    ({"since": "2026-12-07T20:00:00-05:00", "until": "2026-12-08T06:00:00+01:00"}, []),
    # past the ends of the calendar once in UTC: after (before) every event, not a 500
    ({"since": "9999-12-31T23:59:59-23:59"}, []),
    ({"until": "9999-12-31T23:59:59-23:59"}, [1, 2, 3, 4]),
    ({"until": "0001-01-01T00:00:00+23:59"}, []),
    ({"since": "0001-01-01T00:00:00+23:59"}, [1, 2, 3, 4]),
]


@pytest.mark.parametrize(("params", "seqs"), TIME_CASES, ids=[str(p) for p, _ in TIME_CASES])
def test_since_and_until_compare_moments(monkeypatch, users, as_user, params, seqs):
    _timed_events(monkeypatch)
    assert list(AuditEvent.objects.filter(action="test.timed").values_list("created_at", flat=True)) == MOMENTS
    response = as_user(users["grace"]).get("/api/v1/audit-events", {"action": "test.timed", **params})
    assert response.status_code == 200, response.content
    assert [_nth(item["target"]) for item in response.json()["items"]] == seqs


def _nth(target: str) -> int:
    """Which of MOMENTS an event is (1-based; the demo organisation's events come before them)."""
    return int(target.removeprefix("thing:")) + 1


def test_the_page_and_its_exports_filter_by_the_same_moments(monkeypatch, users, as_user):
    _timed_events(monkeypatch)
    grace = as_user(users["grace"])
    params = {"action": "test.timed", "since": "2026-12-07T16:12:26+05:00", "until": "2026-12-08T00:00:00Z"}
    page = grace.get("/reviews/audit/", params)
    assert [_nth(e.target) for e in page.context["page"]] == [2]
    exported = grace.get("/reviews/audit/", {**params, "format": "json"}).json()
    assert [_nth(json.loads(e["payload"])["target"]) for e in exported["events"]] == [2]
    rows = _csv_rows(grace.get("/reviews/audit/", {**params, "format": "csv"}))
    assert [_nth(row["target"]) for row in rows] == [2]


def test_stored_time_is_the_format_created_at_is_written_in():
    _events(1)
    event = AuditEvent.objects.get()
    assert event.created_at == json.loads(event.payload)["at"]
    assert event.created_at == audit.stored_time(datetime.fromisoformat(event.created_at))
    moment = datetime.fromisoformat("2026-12-07T15:42:26+05:30")
    assert audit.stored_time(moment) == "2026-12-07T10:12:26.000000+00:00"


# -- verify: the denormalised columns -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("created_at", "2001-01-01T00:00:00.000000+00:00"),
        ("actor", "mallory"),
        ("action", "test.other"),
        ("target", "thing:forged"),
    ],
)
def test_verify_notices_a_column_that_differs_from_the_hashed_payload(column, value):
    _events(4)
    call_command("audit", "verify")
    _bypass(f"UPDATE core_auditevent SET {column} = %s WHERE seq = 2", [value])  # noqa: S608 (fixed names)
    with pytest.raises(CommandError, match=rf"event #2: the {column} column differs from the hashed payload"):
        call_command("audit", "verify")


# -- verify --file: what an export holds -------------------------------------------------------------


def _export(tmp_path) -> tuple[dict, object]:
    path = tmp_path / "audit.json"
    call_command("audit", "export", "--output", str(path))
    return json.loads(path.read_text()), path


def _verify_file(path, data, capsys) -> str:
    path.write_text(json.dumps(data))
    call_command("audit", "verify", "--file", str(path))
    return capsys.readouterr().out


def test_a_complete_export_records_its_scope_and_verifies(tmp_path, capsys):
    _events(5)
    data, path = _export(tmp_path)
    assert data["scope"] == {"complete": True, "filter": {}, "firstSeq": 1, "lastSeq": 5, "count": 5}
    assert "5 events verified (complete chain); head #5" in _verify_file(path, data, capsys)


def test_verify_file_fails_when_an_event_is_deleted_from_a_complete_export(tmp_path, capsys):
    _events(5)
    data, path = _export(tmp_path)
    n = len(data["events"])
    del data["events"][2]
    with pytest.raises(CommandError, match=rf"it counts {n} events, the file holds {n - 1}"):
        _verify_file(path, data, capsys)
    data["scope"]["count"] = n - 1  # the count put right too
    with pytest.raises(CommandError, match=r"event #3 is missing \(next present is #4\)"):
        _verify_file(path, data, capsys)
    data["events"] = data["events"][-1:]  # only the last, with the head
    data["scope"].update(count=1, firstSeq=n)
    with pytest.raises(CommandError, match=rf"event #1 is missing \(next present is #{n}\)"):
        _verify_file(path, data, capsys)


def test_verify_file_fails_when_a_complete_export_stops_before_its_head(tmp_path, capsys):
    _events(5)
    data, path = _export(tmp_path)
    data["events"] = data["events"][:3]
    data["scope"].update(count=3, lastSeq=3)
    with pytest.raises(CommandError, match=r"event #4 is missing \(the chain head is at #5\)"):
        _verify_file(path, data, capsys)


def test_verify_file_refuses_a_scope_that_contradicts_itself(tmp_path, capsys):
    _events(3)
    data, path = _export(tmp_path)
    data["scope"]["filter"] = {"actor": "system"}
    with pytest.raises(CommandError, match="complete and filter disagree"):
        _verify_file(path, data, capsys)


def test_a_filtered_page_export_says_what_it_cannot_show(tmp_path, capsys, users, as_user):
    base = audit.chain_head()["seq"]  # the demo organisation's events
    _events(5)
    audit.audit_record(actor=None, action="other.event", target="thing:x")
    grace = as_user(users["grace"])
    data = grace.get("/reviews/audit/", {"format": "json", "action": "test.", "since": "nonsense"}).json()
    # the since that did not parse was not applied, so it is not recorded
    assert data["scope"] == {"complete": False, "filter": {"action": "test."}, "firstSeq": base + 1,
                             "lastSeq": base + 5, "count": 5}
    del data["events"][2]
    data["scope"]["count"] = 4
    out = _verify_file(tmp_path / "filtered.json", data, capsys)
    assert f"4 events verified one by one, #{base + 1}-#{base + 5} (filtered: action=test.); head #{base + 6}" in out
    assert "cannot show that an event is missing" in out


def test_an_export_filtered_by_after_must_hold_every_later_event(tmp_path, capsys, users, as_user):
    base = audit.chain_head()["seq"]
    _events(6)
    grace = as_user(users["grace"])
    data = grace.get("/reviews/audit/", {"format": "json", "after": str(base + 2)}).json()
    assert data["scope"]["filter"] == {"after": str(base + 2)}
    path = tmp_path / "after.json"
    assert f"4 events verified (every event from #{base + 3} to the head" in _verify_file(path, data, capsys)
    del data["events"][1]
    data["scope"]["count"] = 3
    with pytest.raises(CommandError, match=rf"event #{base + 4} is missing \(next present is #{base + 5}\)"):
        _verify_file(path, data, capsys)


def test_an_unfiltered_page_export_is_complete(tmp_path, capsys, users, as_user):
    _events(3)
    data = as_user(users["grace"]).get("/reviews/audit/", {"format": "json"}).json()
    assert data["scope"]["complete"] is True
    assert [e["seq"] for e in data["events"]] == list(range(1, data["chainHead"]["seq"] + 1))
    del data["events"][1]
    data["scope"]["count"] -= 1
    with pytest.raises(CommandError, match=r"event #2 is missing \(next present is #3\)"):
        _verify_file(tmp_path / "page.json", data, capsys)


def test_legacy_exports_without_a_scope(tmp_path, capsys):
    """`audit export` used to write only the head and the events (always the whole chain); the audit
    page also wrote exportedAt and could be filtered."""
    _events(5)
    data, path = _export(tmp_path)
    legacy = {"chainHead": data["chainHead"], "events": list(data["events"])}
    assert "5 events verified (complete chain)" in _verify_file(path, legacy, capsys)
    del legacy["events"][2]
    with pytest.raises(CommandError, match=r"event #3 is missing \(next present is #4\)"):
        _verify_file(path, legacy, capsys)
    legacy_page = {**legacy, "exportedAt": "2026-12-01T00:00:00+00:00"}
    out = _verify_file(path, legacy_page, capsys)
    assert "4 events verified one by one, #1-#5 (no recorded scope: an audit-page export, possibly filtered)" in out
    assert "cannot show that an event is missing" in out
    legacy_page["events"] = data["events"]
    assert "5 events verified (complete chain)" in _verify_file(path, legacy_page, capsys)


def test_verify_file_still_finds_an_edit_and_a_broken_link(tmp_path, capsys):
    _events(4)
    data, path = _export(tmp_path)
    edited = json.loads(json.dumps(data))
    edited["events"][1]["payload"] = edited["events"][1]["payload"].replace("thing:1", "thing:X")
    with pytest.raises(CommandError, match="event #2: content does not match"):
        _verify_file(path, edited, capsys)
    data["chainHead"]["hash"] = "f" * 64
    with pytest.raises(CommandError, match="event #4: does not match the export's chain head"):
        _verify_file(path, data, capsys)


def test_an_export_leaves_out_events_appended_after_its_head(monkeypatch):
    _events(3)
    real_head = audit.chain_head

    def head_then_append():
        head = real_head()
        _events(1)  # appended while the export runs
        return head

    monkeypatch.setattr(audit, "chain_head", head_then_append)
    data = audit.export_document(AuditEvent.objects.all())
    assert data["chainHead"]["seq"] == 3
    assert [e["seq"] for e in data["events"]] == [1, 2, 3]


# -- CSV ---------------------------------------------------------------------------------------------


def _csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text.split("\n", 1)[1])))


def test_every_cell_of_the_csv_export_is_safe_in_a_spreadsheet(users, as_user):
    audit.audit_record(
        actor=None, action="test.csv", target="=target", outcome="+outcome", remote_addr="@addr",
        request_id="-A1-A1-cmd", policy_hash="\thash", approval_request_id=-3,
    )
    rows = _csv_rows(as_user(users["grace"]).get("/reviews/audit/", {"format": "csv", "action": "test.csv"}))
    assert len(rows) == 1
    row = rows[0]
    assert row["request_id"] == "'-A1-A1-cmd"
    assert (row["outcome"], row["remote_addr"], row["policy_hash"]) == ("'+outcome", "'@addr", "'\thash")
    assert row["target"] == "'=target" and row["approval_request_id"] == "-3"
    assert not [name for name, cell in row.items() if cell.startswith(FORMULA_STARTS) and cell != "-3"]


def test_a_request_id_header_reaches_the_csv_as_text(fraud_versions, users, as_user):
    alice = as_user(users["alice"])
    body = {"action": "promote-model-version", "target": "model:default/fraud-detector",
            "params": {"version": "3", "alias": "champion"}, "justification": "x"}
    response = alice.post("/api/v1/approval-requests", data=json.dumps(body), content_type="application/json",
                          HTTP_X_REQUEST_ID="-A1-A1-cmd")
    assert response.status_code == 201, response.content
    rows = _csv_rows(as_user(users["grace"]).get("/reviews/audit/", {"format": "csv"}))
    ids = {row["request_id"] for row in rows if "-A1" in row["request_id"]}
    assert ids == {"'-A1-A1-cmd"}


def test_the_command_csv_export_is_safe_too(tmp_path):
    _events(2)
    path = tmp_path / "audit.csv"
    call_command("audit", "export", "--format", "csv", "--output", str(path))
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert rows[0][:2] == ["# chain head", "2"]
    assert [row[0] for row in rows[2:]] == ["1", "2"]
    assert not [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]
