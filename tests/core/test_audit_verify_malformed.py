"""`manage.py audit verify --file` on an export whose records have the wrong types (a null prevHash, a
number for a hash, a payload that is JSON but not an object): the record is named as invalid, like any
other malformed one, never a TypeError."""

import json

import pytest
from django.core.management import CommandError, call_command

from portal.core import audit

pytestmark = pytest.mark.django_db


@pytest.fixture
def export(tmp_path):
    for i in range(3):
        audit.audit_record(actor=None, action="test.event", target=f"thing:{i}", after={"i": i})
    path = tmp_path / "audit.json"
    call_command("audit", "export", "--output", str(path))
    return path


@pytest.mark.parametrize("index,field,value,message", [
    (0, "prevHash", None, r"event #1: prevHash must be text \(a string\)"),
    (1, "prevHash", None, r"event #2: prevHash must be text \(a string\)"),
    (2, "hash", 12, r"event #3: hash must be text \(a string\)"),
    (1, "payload", None, r"event #2: payload must be text \(a string\)"),
    (1, "payload", "[1, 2]", r"event #2: the payload is not a JSON object"),
    (1, "payload", "{not json", r"event #2: the payload is not JSON"),
])
def test_a_record_of_the_wrong_type_is_reported_as_invalid(export, capsys, index, field, value, message):
    call_command("audit", "verify", "--file", str(export))
    assert "audit chain OK" in capsys.readouterr().out
    data = json.loads(export.read_text())
    data["events"][index][field] = value
    export.write_text(json.dumps(data))
    with pytest.raises(CommandError, match=rf"audit chain BROKEN: {message}"):
        call_command("audit", "verify", "--file", str(export))
