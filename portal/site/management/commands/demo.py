"""`manage.py demo load | lineage | mlflow-seed | insights | purge-insights | operations | purge-operations |
credentials` — the demo organisation for `make run`. `insights` adds six weeks of usage history (demo
data: docs/insights.md#demo-data); `operations` imports the demo cost export, sets a team budget,
evaluates the demo SLOs on PLINTH_PROMETHEUS_URL and then every scorecard (docs/operations.md#demo-data)."""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog import demo as catalog_demo
from portal.accounts import demo as org_demo


class Command(BaseCommand):
    help = "Load the demo organisation (teams, users, catalog) and seed MLflow with demo models."

    def add_arguments(self, parser):
        parser.add_argument("verb", choices=["load", "lineage", "mlflow-seed", "insights", "purge-insights",
                                              "operations", "purge-operations", "credentials"])

    def handle(self, *args, verb: str, **options):
        if verb == "load":
            org = org_demo.load_org()
            plan = catalog_demo.load_catalog()
            self.stdout.write(self.style.SUCCESS(
                f"Demo organisation: {len(org['teams'])} teams, {len(org['users'])} users; catalog "
                f"{len(plan.added)} added, {len(plan.changed)} changed, {len(plan.unchanged)} unchanged, "
                f"{len(plan.errors)} errors."))
            for error in plan.errors:
                self.stderr.write(str(error))
        elif verb == "lineage":
            self._lineage()
        elif verb == "mlflow-seed":
            from portal.site.mlflow_demo import seed

            try:
                summary = seed(settings.MLFLOW_TRACKING_URI)
            except Exception as exc:
                raise CommandError(f"Could not seed MLflow at {settings.MLFLOW_TRACKING_URI}: {exc}") from exc
            self.stdout.write(self.style.SUCCESS(f"MLflow demo models: {summary}"))
        elif verb in ("insights", "purge-insights"):
            # Imported when asked for: each app's demo loads only with its verb.
            from portal.insights import demo as insights_demo

            if verb == "insights":
                try:
                    summary = insights_demo.load()
                except insights_demo.DemoOrgMissing as exc:
                    raise CommandError(str(exc)) from None
                # Real usage in the way is not a failure of `make run`: the history is just not added.
                self.stdout.write((self.style.SUCCESS if summary.start else self.style.WARNING)(str(summary)))
                if apps.is_installed("portal.incidents"):  # incidents for the list, the tabs and MTTA/MTTR
                    from portal.incidents import demo as incidents_demo

                    self.stdout.write(f"Demo incidents added: {incidents_demo.load()}")
            else:
                removed = insights_demo.purge()
                self.stdout.write(self.style.SUCCESS(
                    "Removed the demo usage history: " + ", ".join(f"{n} {what}" for what, n in removed.items())))
                if apps.is_installed("portal.incidents"):
                    from portal.incidents import demo as incidents_demo

                    self.stdout.write(f"Removed the demo incidents: {incidents_demo.purge()}")
        elif verb == "operations":
            self._operations()
        elif verb == "purge-operations":
            from portal.costs import demo as costs_demo

            removed = costs_demo.purge()
            self.stdout.write(self.style.SUCCESS(
                "Removed the demo costs: " + ", ".join(f"{n} {what}" for what, n in removed.items())))
        else:
            if not settings.DEBUG:
                raise CommandError("Demo credentials are printed only in development (DEBUG on).")
            self.stdout.write(f"Demo sign-ins (password for all: {org_demo.DEMO_PASSWORD})")
            for username, (name, memberships, admin, what) in org_demo.USERS.items():
                roles = ", ".join(f"{role} of {team}" for team, role in memberships)
                self.stdout.write(f"  {username:<7} {name:<17} {roles}{' + platform admin' if admin else ''} — {what}")

    def _lineage(self) -> None:
        """A week of the fraud team's pipeline runs as OpenLineage events (portal/lineage/demo.py). Without
        the OpenLineage spec the demo goes on without them, saying why."""
        from portal.accounts.models import Team
        from portal.lineage import demo as lineage_demo
        from portal.lineage import spec as lineage_spec

        if not Team.objects.filter(name__in=org_demo.TEAMS).exists():
            raise CommandError("Load the demo organisation first: manage.py demo load")
        try:
            result = lineage_demo.load()
        except lineage_spec.SpecMissing as exc:
            self.stdout.write(self.style.WARNING(f"Demo lineage not loaded: {exc}"))
            return
        self.stdout.write(self.style.SUCCESS(
            f"Demo lineage: {result.received} OpenLineage events, {result.stored} stored "
            f"({result.duplicates} already there), {len(result.runs)} runs."))

    def _operations(self) -> None:
        """Costs first, then SLOs, then scorecards: the scorecards read the other two as facts."""
        from portal.accounts.models import Team
        from portal.costs import demo as costs_demo
        from portal.scorecards import services as scorecard_services
        from portal.slo import demo as slo_demo

        if not Team.objects.filter(name__in=org_demo.TEAMS).exists():
            raise CommandError("Load the demo organisation first: manage.py demo load")
        loaded = costs_demo.load()
        if loaded.imported is not None and loaded.imported.status != "done":
            raise CommandError(f"The demo cost export did not import: {loaded.imported.error}")
        self.stdout.write(f"Demo costs: {loaded}")
        stats = slo_demo.evaluate()
        self.stdout.write(f"Demo SLOs: {stats['evaluated']} evaluated, {stats['problems']} with a problem"
                          + ("" if settings.PLINTH_PROMETHEUS_URL else " (PLINTH_PROMETHEUS_URL is not set)"))
        stats = scorecard_services.evaluate_entities()
        scorecard_services.rollup_today()
        self.stdout.write(f"Scorecards evaluated: {stats}")
