"""`manage.py audit verify [--file export.json]` and `manage.py audit export [--format json|csv]`.

verify walks the stored chain (or an exported file, offline) and names the first broken or missing
event; it also reports append-only triggers that are missing. Exit status 1 when anything is wrong."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from types import SimpleNamespace

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from portal.core import audit
from portal.core.models import AuditEvent


class Command(BaseCommand):
    help = "Verify or export the hash-chained audit trail."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        verify = sub.add_parser("verify", help="Walk the chain; name the first broken or missing event.")
        verify.add_argument(
            "--file", help="Verify an export (JSON from the audit page or `audit export`) offline."
        )
        export = sub.add_parser("export", help="Write every event with the chain head (JSON) or as CSV.")
        export.add_argument("--format", choices=["json", "csv"], default="json")
        export.add_argument("--output", "-o", help="File to write (default: stdout).")

    def handle(self, *args, **options):
        if options["verb"] == "verify":
            return self.verify(options.get("file"))
        return self.export(options["format"], options.get("output"))

    def verify(self, file: str | None) -> None:
        if file:
            ok, message = verify_export(Path(file))
        else:
            ok, message, _ = audit.verify_database()
            missing = audit.guard_installed(connection)
            if missing:
                ok = False
                message += f"; append-only triggers missing: {', '.join(missing)}"
        if not ok:
            raise CommandError(f"audit chain BROKEN: {message}")
        self.stdout.write(f"audit chain OK: {message}")

    def export(self, fmt: str, output: str | None) -> None:
        out = open(output, "w", encoding="utf-8", newline="") if output else sys.stdout  # noqa: SIM115
        try:
            events = AuditEvent.objects.order_by("seq").iterator(chunk_size=2000)
            if fmt == "json":
                json.dump(
                    {
                        "chainHead": audit.chain_head(),
                        "events": [
                            {"seq": e.seq, "payload": e.payload, "prevHash": e.prev_hash, "hash": e.hash}
                            for e in events
                        ],
                    },
                    out,
                    ensure_ascii=False,
                )
                out.write("\n")
            else:
                head = audit.chain_head()
                writer = csv.writer(out)
                writer.writerow(["# chain head", head["seq"], head["hash"]])
                writer.writerow(["seq", "payload", "prev_hash", "hash"])
                for e in events:
                    writer.writerow([e.seq, e.payload, e.prev_hash, e.hash])
        finally:
            if output:
                out.close()


def verify_export(path: Path) -> tuple[bool, str]:
    """Offline check of an export: every event's hash, the links between consecutive events, and (for a
    complete export) the chain head. A filtered export is checked link by link where events are adjacent."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        events = data["events"]
        head = data["chainHead"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"{path}: not an audit export ({exc})"
    previous = None
    for raw in events:
        event = SimpleNamespace(
            seq=raw["seq"], payload=raw["payload"], prev_hash=raw["prevHash"], hash=raw["hash"]
        )
        payload = json.loads(event.payload)
        if audit.event_hash(payload, event.prev_hash) != event.hash or payload.get("seq") != event.seq:
            return False, f"event #{event.seq}: content does not match its hash"
        if previous is not None and previous.seq + 1 == event.seq and previous.hash != event.prev_hash:
            return False, f"event #{event.seq}: previous-hash link broken"
        if previous is None and event.seq == 1 and event.prev_hash != audit.GENESIS:
            return False, "event #1: does not start from the genesis hash"
        previous = event
    complete = bool(events) and events[0]["seq"] == 1 and len(events) == events[-1]["seq"]
    if complete and (events[-1]["seq"], events[-1]["hash"]) != (head["seq"], head["hash"]):
        return (
            False,
            f"the export's chain head #{head['seq']} does not match its last event #{events[-1]['seq']}",
        )
    scope = "complete chain" if complete else "partial export"
    return True, f"{len(events)} events verified ({scope}); head #{head['seq']} {head['hash']}"
