"""`manage.py techdocs build|export-openapi|bench|bench-card`."""

from __future__ import annotations

import difflib
import json
import sys
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from catalog.models import Entity
from portal.techdocs import services


def openapi_path() -> Path:
    return Path(settings.BASE_DIR) / "docs" / "openapi.yaml"


def generate_openapi() -> str:
    """The drf-spectacular schema as YAML, exactly as `export-openapi` writes it."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiYamlRenderer

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return OpenApiYamlRenderer().render(schema, renderer_context={}).decode("utf-8")


class Command(BaseCommand):
    help = "Build docs now, export the platform's OpenAPI schema, or benchmark the docs pipeline."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="verb", required=True)
        build = sub.add_parser("build", help="Build the docs and model cards of entities now (in this process)")
        build.add_argument("refs", nargs="*", help="Entity refs such as component:default/plinth")
        build.add_argument("--all", action="store_true", help="Every entity with docs or a model card")
        build.add_argument("--force", action="store_true", help="Rebuild even when the sources are unchanged")
        export = sub.add_parser("export-openapi", help="Write the drf-spectacular schema to docs/openapi.yaml")
        export.add_argument("--output", default=None)
        export.add_argument("--check", action="store_true", help="Exit 1 with a diff if the file is out of date")
        bench = sub.add_parser("bench", help="Build N Markdown pages and time serving; prints one JSON line")
        bench.add_argument("--pages", type=int, default=1000)
        bench.add_argument("--requests", type=int, default=300)
        card = sub.add_parser("bench-card", help="Time the model-card tab of a 512 KiB card; prints one JSON line")
        card.add_argument("--kind", choices=["realistic", "brackets"], default="realistic")
        card.add_argument("--repeats", type=int, default=5)

    def handle(self, *args, verb: str, **options):
        getattr(self, "_" + verb.replace("-", "_"))(**options)

    def _build(self, refs: list[str], all: bool, force: bool, **_):  # noqa: A002
        if all:
            qs = Entity.objects.select_related("location")
        elif refs:
            qs = Entity.objects.select_related("location").filter(ref__in=[r.lower() for r in refs])
        else:
            raise CommandError("Name entity refs or pass --all.")
        failed = 0
        for entity in qs.iterator(chunk_size=200):
            if not services.needs_build(entity):
                continue
            done = services.entity_docs_build(entity=entity, force=force)
            if done:
                failed += "failed" in done.values()
                self.stdout.write(f"{entity.ref}: " + ", ".join(f"{k} {v}" for k, v in done.items()))
        if failed:
            sys.exit(1)

    def _export_openapi(self, output: str | None, check: bool, **_):
        path = Path(output) if output else openapi_path()
        text = generate_openapi()
        if check:
            current = path.read_text() if path.exists() else ""
            if current != text:
                diff = difflib.unified_diff(current.splitlines(), text.splitlines(), str(path), "generated", lineterm="")
                self.stderr.write("\n".join(list(diff)[:400]))
                sys.exit(1)
            self.stdout.write(f"{path} is up to date.")
            return
        path.write_text(text)
        self.stdout.write(f"Wrote {path} ({len(text)} bytes).")

    def _bench(self, pages: int, requests: int, **_):
        from portal.techdocs.bench import run

        self.stdout.write(json.dumps(run(pages=pages, requests=requests)))

    def _bench_card(self, kind: str, repeats: int, **_):
        from portal.techdocs.bench import run_card

        self.stdout.write(json.dumps(run_card(kind=kind, repeats=repeats)))
