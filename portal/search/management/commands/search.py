"""`manage.py search reindex [--source NAME]` and `manage.py search bench --entities N`."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Search index maintenance: rebuild the index, or run the search benchmark."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        reindex = sub.add_parser("reindex", help="Rebuild the index from every registered source.")
        reindex.add_argument("--source", action="append", help="Only this source (repeatable).")
        bench = sub.add_parser(
            "bench", help="Generate a catalog, index it and time searches (one JSON line)."
        )
        bench.add_argument("--entities", type=int, default=250_000)
        bench.add_argument("--repeat", type=int, default=5)
        bench.add_argument("--keep", action="store_true", help="Keep the generated entities afterwards.")

    def handle(self, *args, **options) -> None:
        if options["action"] == "reindex":
            from portal.search import index

            result = index.rebuild(options.get("source"))
            self.stdout.write(json.dumps(result))
        else:
            from portal.search import bench

            self.stdout.write(
                json.dumps(bench.run(options["entities"], keep=options["keep"], repeat=options["repeat"]))
            )
