"""`manage.py catalog register|validate|refresh|sync-mlflow|sync-org|bench`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog import services
from catalog.descriptors.errors import DescriptorError
from catalog.descriptors.loader import load_documents
from catalog.descriptors.validate import validate_entity
from catalog.models import Location
from portal.core import bench_db


class Command(BaseCommand):
    help = "Register, validate and refresh catalog locations; sync MLflow; benchmark."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        reg = sub.add_parser("register", help="Register a file, folder or URL (stored at once)")
        reg.add_argument("target")
        reg.add_argument("--dry-run", action="store_true")
        val = sub.add_parser("validate", help="Validate descriptor files without storing them (exit 1 if invalid)")
        val.add_argument("files", nargs="+")
        ref = sub.add_parser("refresh", help="Refresh locations now")
        ref.add_argument("--all", action="store_true")
        ref.add_argument("location_ids", nargs="*", type=int)
        sub.add_parser("sync-mlflow", help="Sync registered models from MLFLOW_TRACKING_URI now")
        sub.add_parser("sync-org", help="Teams and memberships from the catalog's Users and Groups now "
                                        "(PLINTH_ORG_SYNC=catalog; docs/identity.md)")
        hook = sub.add_parser("mlflow-webhook", help="Register (or update) MLflow's webhook to this portal, "
                                                     "signed with PLINTH_MLFLOW_WEBHOOK_SECRET")
        hook.add_argument("--url", required=True, help="e.g. https://plinth.example.com/api/v1/webhooks/mlflow")
        sub.add_parser("sdk-schemas", help="Copy the descriptor schemas and kind table into the SDK (sdk/)")
        bench = sub.add_parser("bench", help="Generate a catalog, ingest it, measure, print one JSON line")
        bench.add_argument("--entities", type=int, default=250_000)
        bench.add_argument("--keep", action="store_true", help="Keep the generated data")
        bench.add_argument("--latency", action="store_true",
                           help="Time API reads against the authenticated no-op /api/v1/ping instead, through "
                                "gunicorn and in-process (catalog/latency.py)")
        bench.add_argument("--rounds", type=int, default=20, help="--latency: passes over every URL")
        bench.add_argument("--no-http", action="store_true", help="--latency: in-process only (no gunicorn)")
        bench_db.add_argument(bench)

    def handle(self, *args, verb: str, **options):
        getattr(self, "_" + verb.replace("-", "_"))(**options)

    def _register(self, target: str, dry_run: bool, **_):
        try:
            plan = services.location_register(target=target, actor=None, file_roots=None, dry_run=dry_run)
        except DescriptorError as exc:
            raise CommandError(str(exc)) from exc
        summary = plan.summary()
        self.stdout.write(f"{'Dry run: ' if dry_run else ''}{len(plan.added)} added, {len(plan.changed)} changed, "
                          f"{len(plan.removed)} removed, {len(plan.unchanged)} unchanged, {len(plan.errors)} errors")
        for error in summary["errors"]:
            self.stderr.write(f"  {DescriptorError(**error)}")
        if plan.errors:
            sys.exit(1)

    def _validate(self, files: list[str], **_):
        failures = 0
        for name in files:
            path = Path(name)
            if not path.is_file():
                self.stderr.write(f"{name}: no such file")
                failures += 1
                continue
            docs, errors = load_documents(path.read_bytes(), str(path), max_bytes=settings.PLINTH_CATALOG_MAX_BYTES)
            for doc in docs:
                errors.extend(validate_entity(doc))
            for error in errors:
                self.stderr.write(str(error))
            failures += len(errors)
            self.stdout.write(f"{name}: {len(docs)} document(s), {'OK' if not errors else f'{len(errors)} error(s)'}")
        if failures:
            sys.exit(1)

    def _sdk_schemas(self, **_):
        """The SDK validates offline with the server's own schemas: its package data is this copy."""
        from catalog.descriptors.kinds import kinds_json
        from catalog.descriptors.validate import SCHEMA_DIR

        dest = Path(settings.BASE_DIR) / "sdk" / "src" / "plinth_sdk" / "schemas"
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("*.json"):
            old.unlink()
        for schema in sorted(SCHEMA_DIR.glob("*.schema.json")):
            (dest / schema.name).write_bytes(schema.read_bytes())
        (dest / "kinds.json").write_text(kinds_json())
        self.stdout.write(f"Wrote {dest}")

    def _refresh(self, all: bool, location_ids: list[int], **_):
        qs = Location.objects.all() if all else Location.objects.filter(pk__in=location_ids)
        if not all and not location_ids:
            raise CommandError("Name location ids or pass --all")
        for location in qs:
            plan = services.location_refresh(location=location)
            self.stdout.write(f"{location.target}: {len(plan.added)} added, {len(plan.changed)} changed, "
                              f"{len(plan.removed)} removed, {len(plan.errors)} errors")

    def _sync_mlflow(self, **_):
        from catalog import mlflow_sync

        try:
            self.stdout.write(json.dumps(mlflow_sync.sync()))
        except Exception as exc:
            raise CommandError(f"MLflow sync failed: {exc}") from exc

    def _sync_org(self, **_):
        from catalog import org_sync

        outcome = org_sync.sync()
        if outcome is None:
            raise CommandError("Org sync is off: set PLINTH_ORG_SYNC=catalog (docs/identity.md).")
        self.stdout.write(json.dumps(outcome.as_dict()))

    def _mlflow_webhook(self, url: str, **_):
        from django.conf import settings

        from catalog import mlflow_sync

        if not settings.PLINTH_MLFLOW_WEBHOOK_SECRET:
            raise CommandError("PLINTH_MLFLOW_WEBHOOK_SECRET is not set: the portal would refuse every delivery")
        try:
            webhook_id = mlflow_sync.register_webhook(url=url, secret=settings.PLINTH_MLFLOW_WEBHOOK_SECRET)
        except Exception as exc:
            raise CommandError(f"could not register the webhook with MLflow: {exc}") from exc
        self.stdout.write(f"MLflow webhook {webhook_id} → {url}")

    def _bench(self, entities: int, keep: bool, latency: bool, rounds: int, no_http: bool, **options):
        if bench_db.wants_postgres(options):
            return bench_db.rerun(self.stderr)
        if latency:
            from catalog import latency as latency_bench

            if rounds < 1:
                raise CommandError("--rounds must be at least 1")
            return self.stdout.write(json.dumps(latency_bench.run(entities, rounds=rounds, keep=keep,
                                                                  http=not no_http)))
        from catalog.bench import run

        self.stdout.write(json.dumps(run(entities, keep=keep)))
