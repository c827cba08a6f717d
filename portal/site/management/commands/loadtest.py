"""`manage.py loadtest [run]`: the locust scenario against the production profile (portal/site/loadtest.py;
docs/deployment.md#load-test). `seed` and `outcomes` are the steps it runs in a child process with the
production settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from portal.site import loadtest


def _steps(text: str) -> list[int]:
    try:
        steps = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        steps = []
    if not steps or any(n < 1 or n > 2000 for n in steps):
        raise CommandError(f"--steps {text!r}: a comma-separated list of people counts, each 1–2000")
    return steps


class Command(BaseCommand):
    help = "Load test: locust's mix against the production profile (PostgreSQL, Redis, gunicorn, a worker)."

    def add_arguments(self, parser):
        parser.add_argument("verb", nargs="?", choices=["run", "seed", "outcomes"], default="run")
        parser.add_argument("--entities", type=int, default=int(os.environ.get("LOADTEST_ENTITIES") or 250_000))
        parser.add_argument("--steps", default=os.environ.get("LOADTEST_STEPS") or "10,20,30,40,60,80",
                            help="people per step; each asks for --pace requests per second")
        parser.add_argument("--step-seconds", type=int, default=int(os.environ.get("LOADTEST_STEP_SECONDS") or 60))
        parser.add_argument("--pace", type=float, default=1.0, help="requests per second per person")
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS") or 3))
        parser.add_argument("--web-threads", type=int, default=int(os.environ.get("WEB_THREADS") or 1),
                            help="threads per gunicorn worker (above 1: gthread workers)")
        parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS") or 1),
                            help="Celery worker pool processes")
        parser.add_argument("--keep-going", action="store_true",
                            help="run every step, also after one over the budget")
        parser.add_argument("--restart-database", action="store_true",
                            help="then stop PostgreSQL during a step and start it again: errors must be 503s, "
                                 "the next step clean, `audit verify` passing")
        parser.add_argument("--restart-down-seconds", type=int, default=5)
        parser.add_argument("--people", type=int, default=10, help="seed: people to create")
        parser.add_argument("--out", help="seed: where to write the people (JSON, 0600)")

    def handle(self, *args, **opts):
        if opts["entities"] < 100:
            raise CommandError("--entities: at least 100")
        if opts["verb"] == "seed":
            if not opts["out"]:
                raise CommandError("seed needs --out")
            self.stdout.write(json.dumps(loadtest.seed(opts["entities"], opts["people"], Path(opts["out"]))))
            return
        if opts["verb"] == "outcomes":
            self.stdout.write(json.dumps(loadtest.outcomes()))
            return
        if opts["step_seconds"] < 5 or opts["pace"] <= 0 or opts["web_threads"] < 1:
            raise CommandError("--step-seconds: at least 5; --pace: above 0; --web-threads: at least 1")
        options = loadtest.Options(entities=opts["entities"], steps=_steps(opts["steps"]),
                                   step_seconds=opts["step_seconds"], web_workers=opts["web_workers"],
                                   web_threads=opts["web_threads"],
                                   workers=opts["workers"], pace=opts["pace"], keep_going=opts["keep_going"],
                                   restart_database=opts["restart_database"],
                                   restart_down_seconds=opts["restart_down_seconds"])
        result = loadtest.run(options, say=lambda line: self.stderr.write(line))
        self.stdout.write(json.dumps(result))
