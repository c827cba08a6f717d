"""`manage.py scorecards evaluate|check|bench`."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Scorecards: evaluate every entity now, check the definitions, or run the benchmark."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("evaluate", help="Evaluate every entity against every scorecard (the nightly pass).")
        sub.add_parser("check", help="Load and compile every definition; exit 1 naming the broken ones.")
        bench = sub.add_parser("bench", help="Evaluate N generated entities twice (cold, warm); one JSON line.")
        bench.add_argument("--entities", type=int, default=250_000)
        bench.add_argument("--keep", action="store_true", help="Keep the generated entities and results.")

    def handle(self, *args, action, **options):
        if action == "evaluate":
            from portal.scorecards import tasks

            self.stdout.write(json.dumps(tasks.evaluate_all.run()))
        elif action == "check":
            from portal.scorecards import definitions, engine

            problems = []
            for card in definitions.load_all():
                errors = [card.error] if card.error else [f"{k}: {v}" for k, v in engine.compiled(card).errors.items()]
                for error in errors:
                    problems.append(f"{card.name}: {error}")
                self.stdout.write(f"{card.name} v{card.version}: {'ok' if not errors else 'BROKEN'}")
            if problems:
                raise CommandError("\n".join(problems))
        else:
            from portal.scorecards import bench

            self.stdout.write(json.dumps(bench.run(options["entities"], keep=options["keep"])))
