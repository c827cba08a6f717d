"""`manage.py costs import|allocate|budgets|bench`."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Costs: import a FOCUS export, recompute the allocation, check budgets, or run the benchmark."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="Import a FOCUS 1.x export (CSV or Parquet) now, in this process.")
        imp.add_argument("file", type=Path)
        imp.add_argument("--provider", required=True, help="Short name of the source, e.g. aws")
        sub.add_parser("allocate", help="Recompute the allocation of every month.")
        sub.add_parser("budgets", help="Check team budgets now (the hourly beat task).")
        bench = sub.add_parser("bench", help="Import N generated FOCUS rows, then time the dashboards; one JSON line.")
        bench.add_argument("--rows", type=int, default=10_000_000)
        bench.add_argument("--keep", action="store_true", help="Keep the generated data.")

    def handle(self, *args, action, **options):
        if action == "import":
            from portal.costs import focus, services

            path: Path = options["file"]
            if not path.is_file():
                raise CommandError(f"{path}: no such file")
            try:
                imp = services.import_now(path=path, provider=options["provider"])
            except focus.FocusError as exc:
                raise CommandError(str(exc)) from None
            except ValidationError as exc:
                raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
            if imp.status != "done":
                raise CommandError(imp.error)
            self.stdout.write(json.dumps({"import": imp.pk, "status": imp.status, "rows": imp.rows,
                                          "periods": imp.periods, "totals": imp.totals}))
        elif action == "allocate":
            from portal.costs import allocation

            self.stdout.write(json.dumps(allocation.allocate(None)))
        elif action == "budgets":
            from portal.costs import services

            self.stdout.write(json.dumps({"alerts": services.check_budgets()}))
        else:
            from portal.costs import bench

            self.stdout.write(json.dumps(bench.run(options["rows"], keep=options["keep"])))
