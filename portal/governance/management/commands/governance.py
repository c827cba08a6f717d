"""`manage.py governance bench`: submit → gates → reviewers notified latency, a burst of requests
processed with none lost or duplicated, and policy evaluation time — one JSON line.

Needs Redis as the broker (REDIS_URL or CELERY_BROKER_URL) and runs its own worker (one process,
concurrency 1) on the current database. Use a scratch database:

    PLINTH_VAR_DIR=/tmp/plinth-bench python -m tests.services --services redis -- \\
        sh -c 'python manage.py migrate -v0 && python manage.py governance bench'
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count

from catalog import demo as catalog_demo
from catalog.models import Entity, ModelVersion
from portal.accounts import demo as org_demo
from portal.core.models import AuditEvent
from portal.core.proc import start_worker, stop
from portal.governance import gate_input, policy, services
from portal.governance.models import ApprovalRequest, Notification, PolicyResult, State

ROOT = Path(__file__).resolve().parents[4]


def p95(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


class Command(BaseCommand):
    help = "Governance benchmark (needs Redis): prints one JSON line."

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=["bench"])
        parser.add_argument("--latency-requests", type=int, default=50)
        parser.add_argument("--burst", type=int, default=1000)
        parser.add_argument("--timeout", type=float, default=600.0)

    def handle(self, *args, **options):
        from portal.celery import app

        if not str(app.conf.broker_url).startswith("redis"):
            raise CommandError(
                "the benchmark needs Redis as the broker: set REDIS_URL (e.g. run it under "
                "`python -m tests.services --services redis -- …`)"
            )
        org = org_demo.load_org()
        plan = catalog_demo.load_catalog()
        if plan.errors:
            raise CommandError(f"demo catalog has errors: {plan.errors[:3]}")
        entity = Entity.objects.get(ref="model:default/fraud-detector")
        for version, auc in (("1", 0.88), ("2", 0.91), ("3", 0.93)):
            ModelVersion.objects.get_or_create(
                entity=entity,
                version=version,
                defaults={"version_number": int(version), "metrics": {"auc": auc}, "aliases": []},
            )
        alice = org["users"]["alice"]
        run = uuid.uuid4().hex[:6]
        worker, log_path = start_worker("governance-bench", timeout=min(options["timeout"], 120),
                                        env={"PLINTH_HEARTBEAT_SECONDS": "1"})
        try:
            latency = self._latency(alice, run, options["latency_requests"], options["timeout"])
            burst = self._burst(alice, run, options["burst"], options["timeout"])
        finally:
            stop(worker, grace=30)
            log_path.unlink(missing_ok=True)
        evaluation = self._policy_time(options["burst"])
        result = {
            "bench": "governance",
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "broker": "redis",
            "workers": 1,
            "concurrency": 1,
            "submit_to_notified_p50_s": round(statistics.median(latency), 3) if latency else None,
            "submit_to_notified_p95_s": round(p95(latency), 3),
            "submit_to_notified_target_s": 1.0,
            **burst,
            **evaluation,
        }
        self.stdout.write(json.dumps(result))

    def _submit(self, user, run: str, i: int) -> ApprovalRequest:
        return services.request_create(
            actor=user,
            action="promote-model-version",
            target="model:default/fraud-detector",
            params={"version": "3", "alias": f"bench-{run}-{i}"},
        )

    def _latency(self, user, run: str, count: int, timeout: float) -> list[float]:
        """One request at a time: submitted_at → the last reviewer notification of stage 1."""
        latencies = []
        for i in range(count):
            req = self._submit(user, f"{run}l", i)
            deadline = time.monotonic() + timeout
            while True:
                notes = list(
                    Notification.objects.filter(request=req, kind="review").values_list(
                        "created_at", flat=True
                    )
                )
                if len(notes) >= 2:
                    latencies.append((max(notes) - req.submitted_at).total_seconds())
                    break
                if time.monotonic() > deadline:
                    raise CommandError(f"request #{req.pk} was not processed within {timeout} s")
                time.sleep(0.005)
        return latencies

    def _burst(self, user, run: str, count: int, timeout: float) -> dict:
        started = time.monotonic()
        ids = [self._submit(user, f"{run}b", i).pk for i in range(count)]
        submitted = time.monotonic() - started
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = (
                Notification.objects.filter(request_id__in=ids, kind="review")
                .values("request_id")
                .annotate(n=Count("id"))
                .filter(n__gte=2)
                .count()
            )
            if done == count:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - started
        states = dict(ApprovalRequest.objects.filter(pk__in=ids).values_list("state").annotate(n=Count("id")))
        per_request = (
            Notification.objects.filter(request_id__in=ids, kind="review")
            .values("request_id")
            .annotate(n=Count("id"))
        )
        gates_events = AuditEvent.objects.filter(
            action="governance.request.gates", target__in=[f"approval-request:{pk}" for pk in ids]
        ).count()
        results = PolicyResult.objects.filter(request_id__in=ids).values("request_id").annotate(n=Count("id"))
        return {
            "burst_requests": count,
            "burst_processed": states.get(State.IN_REVIEW, 0),
            "burst_lost": count - sum(1 for r in per_request if r["n"] >= 1),
            "burst_duplicated_notifications": sum(r["n"] - 2 for r in per_request if r["n"] > 2),
            "burst_duplicated_gate_runs": max(0, gates_events - count),
            "burst_policy_results_per_request": sorted({r["n"] for r in results}),
            "burst_submit_s": round(submitted, 2),
            "burst_total_s": round(elapsed, 2),
            "burst_throughput_per_s": round(count / elapsed, 1) if elapsed else None,
        }

    def _policy_time(self, count: int) -> dict:
        policies = policy.current()
        req = (
            ApprovalRequest.objects.filter(target_ref="model:default/fraud-detector").order_by("-id").first()
        )
        gates = req.workflow["gates"]
        payload = gate_input.build(req)
        policies.evaluate(gates, payload)  # warm
        times = []
        for _ in range(count):
            _, elapsed = policies.evaluate(gates, payload)
            times.append(elapsed)
        return {
            "policy_eval_gates": len(gates),
            "policy_eval_mean_ms": round(statistics.mean(times), 3),
            "policy_eval_p95_ms": round(p95(times), 3),
            "policy_eval_target_ms": 5.0,
        }
