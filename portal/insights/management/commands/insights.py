"""`manage.py insights rollup|maintenance|bench`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Usage analytics: roll events up (backfill), run maintenance (partitions, retention), benchmark."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        roll = sub.add_parser("rollup", help="Roll up the events of the last DAYS days (a backfill; idempotent)")
        roll.add_argument("--days", type=int, default=2)
        sub.add_parser("maintenance", help="Create next months' partitions (PostgreSQL), delete expired events")
        bench = sub.add_parser("bench", help="Generate events, roll them up, measure; print one JSON line")
        bench.add_argument("--events", type=int, default=10_000_000)
        bench.add_argument("--users", type=int, default=5000)
        bench.add_argument("--teams", type=int, default=200)
        bench.add_argument("--days", type=int, default=30)
        bench.add_argument("--repeat", type=int, default=50, help="Calls per measured query")
        bench.add_argument("--capture-requests", type=int, default=500,
                           help="Page requests with analytics on, and as many off (capture overhead)")
        bench.add_argument("--keep", action="store_true", help="Keep the generated data")

    def handle(self, *args, verb: str, **opts):
        from portal.insights import partitions, rollup, services

        if verb == "rollup":
            if not 1 <= opts["days"] <= 3650:
                raise CommandError("--days: between 1 and 3650")
            now = datetime.now(UTC)
            counts = rollup.rollup_range(now - timedelta(days=opts["days"]), now + timedelta(hours=1))
            self.stdout.write(json.dumps(counts))
        elif verb == "maintenance":
            result = {"partitions_created": partitions.ensure_partitions(), **services.events_expire()}
            self.stdout.write(json.dumps(result))
        else:
            from portal.insights import bench

            for name in ("events", "users", "teams", "days", "repeat", "capture_requests"):
                if opts[name] < 1:
                    raise CommandError(f"--{name.replace('_', '-')}: must be at least 1")
            result = bench.run(events=opts["events"], users=opts["users"], teams=opts["teams"], days=opts["days"],
                               keep=opts["keep"], repeat=opts["repeat"],
                               capture_requests=opts["capture_requests"],
                               progress=lambda message: self.stderr.write(f"insights bench: {message}"))
            self.stdout.write(json.dumps(result))
