"""`manage.py lineage link|rebuild|prune|bench`."""

from __future__ import annotations

import json
import os

from django.core.management.base import BaseCommand, CommandError

from portal.core import bench_db


class Command(BaseCommand):
    help = "Lineage: link declared entities to nodes, prune old runs, or run the ingest benchmark."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("link", help="Link nodes to entities annotated openlineage.io/job|dataset.")
        sub.add_parser("rebuild", help="Recompute the graph edges from catalog relations, MLflow runs and deployments.")
        prune = sub.add_parser("prune", help="Delete runs older than the retention setting.")
        prune.add_argument("--days", type=int, default=None)
        bench = sub.add_parser("bench", help="Ingest N generated events over M nodes, then time graph and impact queries; one JSON line.")
        bench.add_argument("--events", type=int, default=1_000_000)
        bench.add_argument("--nodes", type=int, default=200_000)
        bench.add_argument("--batch", type=int, default=1000)
        bench.add_argument("--clients", type=int, default=min(os.cpu_count() or 1, 4),
                           help="Processes ingesting at once, as web workers would (default: the CPU count, at most 4).")
        bench.add_argument("--queries", type=int, default=200, help="Graph and impact queries to time (each).")
        bench_db.add_argument(bench)
        bench.add_argument("--skip-ingest", action="store_true",
                           help="Time the graph queries only, over what the database holds.")

    def handle(self, *args, action, **options):
        from portal.lineage import services

        if action == "link":
            self.stdout.write(f"{services.link_declared()} declared entities linked")
        elif action == "rebuild":
            from portal.lineage import graph_sync

            self.stdout.write(f"{graph_sync.graph_edges_rebuild()} graph edges written")
        elif action == "prune":
            self.stdout.write(f"{services.runs_prune(older_than_days=options['days'])} runs deleted")
        else:
            from portal.lineage import bench, graph_bench, spec

            if not options["skip_ingest"]:
                try:  # before any database is started or any body generated: the clients would fail on it
                    spec.load()
                except spec.SpecMissing as exc:
                    raise CommandError(f"{exc}: the ingest checks every event against OpenLineage's JSON Schema; "
                                       "set the variable to a copy of the spec folder (OpenLineage.json and "
                                       "facets/, docs/lineage.md#where-the-spec-comes-from)") from None
            if bench_db.wants_postgres(options):
                return bench_db.rerun(self.stderr)
            result = {} if options["skip_ingest"] else bench.run(
                events=options["events"], nodes=options["nodes"], batch=options["batch"],
                clients=options["clients"])
            result["graph"] = graph_bench.run(queries=options["queries"])
            self.stdout.write(json.dumps(result))
