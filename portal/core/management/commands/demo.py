"""`manage.py demo load | mlflow-seed | credentials` — the demo organisation for `make run`."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from portal.core import demo


class Command(BaseCommand):
    help = "Load the demo organisation (teams, users, catalog) and seed MLflow with demo models."

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=["load", "mlflow-seed", "credentials"])

    def handle(self, *args, verb: str, **options):
        if verb == "load":
            org = demo.load_org()
            plan = demo.load_catalog()
            self.stdout.write(self.style.SUCCESS(
                f"Demo organisation: {len(org['teams'])} teams, {len(org['users'])} users; catalog "
                f"{len(plan.added)} added, {len(plan.changed)} changed, {len(plan.unchanged)} unchanged, "
                f"{len(plan.errors)} errors."))
            for error in plan.errors:
                self.stderr.write(str(error))
        elif verb == "mlflow-seed":
            from portal.core.mlflow_demo import seed

            try:
                summary = seed(settings.MLFLOW_TRACKING_URI)
            except Exception as exc:
                raise CommandError(f"Could not seed MLflow at {settings.MLFLOW_TRACKING_URI}: {exc}") from exc
            self.stdout.write(self.style.SUCCESS(f"MLflow demo models: {summary}"))
        else:
            if not settings.DEBUG:
                raise CommandError("Demo credentials are printed only in development (DEBUG on).")
            self.stdout.write(f"Demo sign-ins (password for all: {demo.DEMO_PASSWORD})")
            for username, (name, memberships, admin, what) in demo.USERS.items():
                roles = ", ".join(f"{role} of {team}" for team, role in memberships)
                self.stdout.write(f"  {username:<7} {name:<17} {roles}{' + platform admin' if admin else ''} — {what}")
