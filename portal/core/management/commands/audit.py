"""`manage.py audit verify [--file export.json]` and `manage.py audit export [--format json|csv]`.

verify walks the stored chain (or an exported file, offline) and names the first broken or missing
event; it also reports append-only triggers that are missing. Exit status 1 when anything is wrong.
A JSON export records its scope (complete, or the filters applied); verify --file finds a missing event
only in what the scope says is every event (`verify_export`)."""

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
from portal.core.spreadsheet import safe_cell


class Command(BaseCommand):
    help = "Verify or export the hash-chained audit trail."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        verify = sub.add_parser("verify", help="Walk the chain; name the first broken or missing event.")
        verify.add_argument(
            "--file", help="Verify an export (JSON from the audit page or `audit export`) offline."
        )
        export = sub.add_parser(
            "export", help="Write every event with the chain head and scope (JSON), or as CSV."
        )
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
            if fmt == "json":
                json.dump(audit.export_document(AuditEvent.objects.all()), out, ensure_ascii=False)
                out.write("\n")
            else:
                head = audit.chain_head()
                events = AuditEvent.objects.filter(seq__lte=head["seq"]).order_by("seq").iterator(chunk_size=2000)
                writer = csv.writer(out)
                writer.writerow(["# chain head", head["seq"], head["hash"]])
                writer.writerow(["seq", "payload", "prev_hash", "hash"])
                for e in events:
                    writer.writerow([safe_cell(value) for value in (e.seq, e.payload, e.prev_hash, e.hash)])
        finally:
            if output:
                out.close()


def verify_export(path: Path) -> tuple[bool, str]:
    """Offline check of a JSON export: every event's hash and seq, the links between consecutive events,
    #1's link to the genesis hash, and the chain head where the export reaches it. Then by its scope: a
    complete export must hold #1 to the head with nothing missing (so must one filtered only by `after`,
    from after+1); any other filtered export can vouch only for the events it holds: one deleted from
    the file, or from the database before exporting, cannot be told from one the filter left out.

    Exports without a recorded scope (made before 2026-12-07): `audit export` wrote only the chain head and
    the events, always the whole chain, so it is checked as complete; the audit page's also wrote
    `exportedAt` and may have been filtered, so it is complete only if it holds #1 to the head."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        head_seq, head_hash = data["chainHead"]["seq"], data["chainHead"]["hash"]
        events = [
            SimpleNamespace(seq=raw["seq"], payload=raw["payload"], prev_hash=raw["prevHash"], hash=raw["hash"])
            for raw in data["events"]
        ]
        scope = data.get("scope")
        if not all(isinstance(value, int) for value in (head_seq, *(event.seq for event in events))):
            raise TypeError("seq is not a number")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"{path}: not an audit export ({exc})"
    previous = None
    for event in events:
        if previous is not None and event.seq <= previous.seq:
            return False, f"event #{event.seq}: out of order (after #{previous.seq})"
        if event.seq > head_seq:
            return False, f"event #{event.seq} is past the export's chain head #{head_seq}"
        wrong = [key for key, value in (("payload", event.payload), ("prevHash", event.prev_hash),
                                        ("hash", event.hash)) if not isinstance(value, str)]
        if wrong:  # a null or a number where the export writes text: malformed, not a crash
            return False, f"event #{event.seq}: {', '.join(wrong)} must be text (a string)"
        try:
            payload = json.loads(event.payload)
        except ValueError:
            return False, f"event #{event.seq}: the payload is not JSON"
        if not isinstance(payload, dict):
            return False, f"event #{event.seq}: the payload is not a JSON object"
        if audit.event_hash(payload, event.prev_hash) != event.hash or payload.get("seq") != event.seq:
            return False, f"event #{event.seq}: content does not match its hash"
        if previous is not None and previous.seq + 1 == event.seq and previous.hash != event.prev_hash:
            return False, f"event #{event.seq}: previous-hash link broken"
        if event.seq == 1 and event.prev_hash != audit.GENESIS:
            return False, "event #1: does not start from the genesis hash"
        if event.seq == head_seq and event.hash != head_hash:
            return False, f"event #{event.seq}: does not match the export's chain head"
        previous = event
    seqs = [event.seq for event in events]
    if scope is None:
        # seqs ascend: #1 to the head with as many events as the head's seq is every event.
        complete = "exportedAt" not in data or (seqs[:1] == [1] and len(seqs) == head_seq == seqs[-1])
        filters, label = {}, "no recorded scope: an audit-page export, possibly filtered"
    else:
        problem = _scope_problem(scope, seqs)
        if problem:
            return False, f"the export's scope does not match its events: {problem}"
        complete, filters = scope["complete"], scope["filter"]
        label = "filtered: " + ", ".join(f"{key}={value}" for key, value in filters.items())
    first = 1 if complete else _contiguous_from(filters)
    if first is not None:
        missing = _first_missing(seqs, first, head_seq)
        if missing:
            return False, missing
    done = f"head #{head_seq} {head_hash}"
    if complete:
        return True, f"{len(events)} events verified (complete chain); {done}"
    if first is not None:
        return True, f"{len(events)} events verified (every event from #{first} to the head; {label}); {done}"
    held = f", #{seqs[0]}-#{seqs[-1]}" if seqs else ""
    return True, (
        f"{len(events)} events verified one by one{held} ({label}); {done}. An export that is not the "
        "whole chain cannot show that an event is missing: run `audit verify` on the database, or verify "
        "a complete export (`audit export`, or the audit page without filters)"
    )


def _scope_problem(scope, seqs: list[int]) -> str | None:
    if not isinstance(scope, dict) or not isinstance(scope.get("complete"), bool):
        return "no complete flag"
    if not isinstance(scope.get("filter"), dict) or scope["complete"] == bool(scope["filter"]):
        return "complete and filter disagree"
    if scope.get("count") != len(seqs):
        return f"it counts {scope.get('count')} events, the file holds {len(seqs)}"
    if (scope.get("firstSeq"), scope.get("lastSeq")) != ((seqs[0], seqs[-1]) if seqs else (None, None)):
        return f"it spans #{scope.get('firstSeq')}-#{scope.get('lastSeq')}, the file does not"
    return None


def _contiguous_from(filters: dict) -> int | None:
    """Where a filtered export must start holding every event (filtered only by `after`), else None."""
    if set(filters) != {"after"}:
        return None
    try:
        return int(filters["after"]) + 1
    except (TypeError, ValueError):
        return None


def _first_missing(seqs: list[int], first: int, head_seq: int) -> str | None:
    """The first event missing from `first` to the head (seqs ascending, none past the head)."""
    expected = first
    for seq in seqs:
        if seq < first:
            return f"event #{seq} is outside the export's scope (which starts at #{first})"
        if seq != expected:
            return f"event #{expected} is missing (next present is #{seq})"
        expected += 1
    if expected <= head_seq:
        return f"event #{expected} is missing (the chain head is at #{head_seq})"
    return None
