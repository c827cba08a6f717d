"""The audit trail: append-only in the database, tamper-evident by hash chain, verifiable offline."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from portal.core import audit
from portal.core.models import AuditChainHead, AuditEvent
from tests.governance.test_audit_integrity import _bypass  # the guard lifted on either engine

pytestmark = pytest.mark.django_db


def _events(n: int = 4) -> None:
    for i in range(n):
        audit.audit_record(actor=None, action="test.event", target=f"thing:{i}", after={"i": i})


def test_database_refuses_update_and_delete():
    _events(2)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=1).update(target="thing:forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(seq=2).delete()
    with pytest.raises(DatabaseError, match="only moves forward"), transaction.atomic():
        AuditChainHead.objects.filter(pk=1).update(seq=0)
    assert AuditEvent.objects.count() == 2
    assert audit.guard_installed(connection) == []


def test_verify_names_a_tampered_event(capsys):
    _events(5)
    call_command("audit", "verify")
    assert "audit chain OK: 5 events verified" in capsys.readouterr().out
    payload = json.loads(AuditEvent.objects.get(seq=3).payload)
    payload["after"] = {"i": 999}
    _bypass("UPDATE core_auditevent SET payload = %s WHERE seq = 3", [audit.canonical(payload)])
    with pytest.raises(CommandError, match=r"event #3: content does not match its hash"):
        call_command("audit", "verify")


def test_verify_names_a_deleted_event_and_a_deleted_tail():
    _events(5)
    _bypass("DELETE FROM core_auditevent WHERE seq = 2")
    with pytest.raises(CommandError, match=r"event #2 is missing"):
        call_command("audit", "verify")


def test_verify_finds_a_deleted_tail_through_the_chain_head():
    _events(5)
    _bypass("DELETE FROM core_auditevent WHERE seq >= 4")
    with pytest.raises(CommandError, match=r"event #4 is missing \(the chain head is at #5\)"):
        call_command("audit", "verify")


def test_verify_reports_missing_triggers():
    _events(1)
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER core_auditevent_no_update")
    with pytest.raises(CommandError, match="triggers missing: core_auditevent_no_update"):
        call_command("audit", "verify")


def test_export_verifies_offline_and_detects_an_edit(tmp_path):
    _events(4)
    path = tmp_path / "audit.json"
    call_command("audit", "export", "--output", str(path))
    call_command("audit", "verify", "--file", str(path))
    data = json.loads(path.read_text())
    assert data["chainHead"]["seq"] == 4
    data["events"][1]["payload"] = data["events"][1]["payload"].replace("thing:1", "thing:X")
    path.write_text(json.dumps(data))
    with pytest.raises(CommandError, match="event #2: content does not match"):
        call_command("audit", "verify", "--file", str(path))


def test_flush_may_still_empty_the_table():
    """`manage.py flush` (the test suite's reset) is the one sanctioned way to delete audit rows."""
    _events(2)
    call_command("flush", interactive=False, verbosity=0)
    assert AuditEvent.objects.count() == 0
