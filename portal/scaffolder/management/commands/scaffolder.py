"""`manage.py scaffolder bench`: time the ML model service template on a real Celery worker.

Prints one JSON line: the worker time of one run (target ≤ 3 s) and N concurrent runs (all must
succeed) with their wall time. Run it on a scratch database and var dir, e.g.
`PLINTH_VAR_DIR=/tmp/plinth-bench python manage.py migrate && PLINTH_VAR_DIR=/tmp/plinth-bench python manage.py scaffolder bench`.
"""

from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.core.proc import start_worker, stop

BUILTIN = Path(__file__).resolve().parents[2] / "builtin" / "catalog-info.yaml"


class Command(BaseCommand):
    help = "Scaffolder tools: `bench` runs the ML model service template on a real worker and prints JSON."

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=["bench"])
        parser.add_argument("--concurrent", type=int, default=20)
        parser.add_argument(
            "--concurrency", type=int, default=2, help="worker processes of the spawned worker"
        )
        parser.add_argument("--no-worker", action="store_true", help="use an already running worker")
        parser.add_argument("--timeout", type=float, default=300.0)

    def handle(self, *args, **opts):
        from catalog import demo as catalog_demo
        from catalog import services as catalog_services
        from portal.accounts import demo as org_demo

        org = org_demo.load_org()
        plan = catalog_services.location_register(target=str(BUILTIN), actor=None, file_roots=None)
        if plan.errors:
            raise CommandError(f"built-in templates do not register: {[str(e) for e in plan.errors]}")
        catalog_services.location_register(
            target=str(catalog_demo.CATALOG_DIR / "catalog-info.yaml"), actor=None, file_roots=None
        )
        worker, log_path = (None, None) if opts["no_worker"] else start_worker("scaffolder-bench",
                                                                             concurrency=opts["concurrency"])
        try:
            user = org["users"]["alice"]
            single = self._wait([self._start(user)], opts["timeout"])[0]
            if single.status != "succeeded":
                raise CommandError(f"the single run failed: {single.error}")
            started = time.monotonic()
            runs = [self._start(user) for _ in range(opts["concurrent"])]
            runs = self._wait(runs, opts["timeout"])
            wall = time.monotonic() - started
        finally:
            if worker is not None:
                stop(worker, grace=30)
                log_path.unlink(missing_ok=True)
        ok = [r for r in runs if r.status == "succeeded"]
        durations = [r.duration for r in runs if r.duration is not None]
        result = {
            "bench": "scaffolder",
            "template": "ml-model-service",
            "single_run_worker_seconds": round(single.duration, 3),
            "single_run_target_seconds": 3.0,
            "single_run_within_target": single.duration <= 3.0,
            "concurrent_runs": len(runs),
            "concurrent_succeeded": len(ok),
            "concurrent_failed": len(runs) - len(ok),
            "concurrent_wall_seconds": round(wall, 2),
            "concurrent_worker_seconds_p50": round(statistics.median(durations), 3) if durations else None,
            "concurrent_worker_seconds_max": round(max(durations), 3) if durations else None,
            "worker_processes": opts["concurrency"],
            "cpus": os.cpu_count(),
            "broker": settings.CELERY_BROKER_URL.split(":", 1)[0],
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        }
        self.stdout.write(json.dumps(result))
        if len(ok) != len(runs):
            raise CommandError(
                f"{len(runs) - len(ok)} concurrent run(s) failed: {[r.error for r in runs if r.error][:3]}"
            )

    def _start(self, user):
        from portal.scaffolder import forms, services
        from portal.scaffolder.selectors import template_entity
        from portal.scaffolder.templates import from_entity

        entity = template_entity(user, "default", "ml-model-service")
        template = from_entity(entity)
        pages = forms.pages(template, user)
        name = f"bench-{uuid.uuid4().hex[:10]}"
        values = forms.with_defaults(
            pages,
            {
                "name": name,
                "owner": "fraud-ml",
                "modelType": "classifier",
                "consumesFeatures": ["featureset:default/card-transactions-features"],
            },
        )
        for page in pages:
            if errors := forms.validate_page(page, values):
                raise CommandError(f"bench values are invalid: {errors}")
        return services.run_create(
            template=template,
            entity=entity,
            actor=user,
            parameters=values,
            secret_values={},
            dry_run=False,
            owner_team=forms.owner_team(pages, values, user),
        )

    def _wait(self, runs, timeout: float):
        from portal.scaffolder.models import Run

        deadline = time.monotonic() + timeout
        pks = [r.pk for r in runs]
        while time.monotonic() < deadline:
            fresh = list(Run.objects.filter(pk__in=pks).order_by("pk"))
            if all(r.finished for r in fresh):
                return fresh
            time.sleep(0.2)
        raise CommandError(f"runs did not finish within {timeout} s")

