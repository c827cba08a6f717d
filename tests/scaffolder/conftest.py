"""Scaffolder test helpers: an isolated scaffolder root, starting runs and executing them inline."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import textwrap
import uuid
from pathlib import Path

import pytest

from portal.scaffolder import executor, forms, services
from portal.scaffolder.models import Run
from portal.scaffolder.templates import from_entity

BUILTIN = Path(__file__).resolve().parents[2] / "portal" / "scaffolder" / "builtin"


@pytest.fixture
def org(db):
    """The demo organisation and catalog (as the suite-wide `demo_org`), asserting only that the
    scaffolder's own built-in templates registered cleanly: other apps' demo descriptors are not
    this suite's business (and may be mid-change while several apps are developed at once)."""
    from catalog import demo as catalog_demo
    from catalog import services as catalog_services
    from portal.accounts import demo as org_demo

    result = org_demo.load_org()
    for path in catalog_demo.DEMO_LOCATIONS:
        if path.exists():
            plan = catalog_services.location_register(target=str(path), actor=None, file_roots=None)
            if path.parent == BUILTIN:
                assert not plan.errors, [str(e) for e in plan.errors]
    return result


@pytest.fixture
def scaffolder_root(settings, tmp_path) -> Path:
    root = tmp_path / "scaffolder"
    settings.PLINTH_SCAFFOLDER_ROOT = root
    return root


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def template_entity(name: str, namespace: str = "default"):
    from catalog.models import Entity

    return Entity.objects.get(kind_key="template", namespace=namespace, name_key=name.lower())


def start(
    user, template_name: str, values: dict, *, dry_run: bool = False, secret_values=None, entity=None
) -> Run:
    """Create a run as the view does (values already validated by the caller or not: tests decide)."""
    entity = entity or template_entity(template_name)
    template = from_entity(entity)
    pages = forms.pages(template, user)
    merged = forms.with_defaults(pages, values)
    parameters, secrets = forms.split_secrets(pages, merged)
    secrets.update(secret_values or {})
    return services.run_create(
        template=template,
        entity=entity,
        actor=user,
        parameters=parameters,
        secret_values=secrets,
        dry_run=dry_run,
        owner_team=forms.owner_team(pages, merged, user),
    )


def published_git(owner: str, name: str, *args: str) -> str:
    """`git args` in a clone of a published repository made from its bundle in the shared storage
    (what someone who downloads it from the run page gets)."""
    from portal.scaffolder import downloads
    from portal.scaffolder.models import PublishedRepository

    repository = PublishedRepository.objects.get(owner=owner, name=name)
    with tempfile.TemporaryDirectory() as scratch:
        bundle = Path(scratch) / f"{name}.bundle"
        with downloads.open_bundle(repository) as src, bundle.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        work = Path(scratch) / name
        subprocess.run(["git", "clone", "-q", str(bundle), str(work)], check=True, capture_output=True)
        return subprocess.run(["git", "-C", str(work), *args], capture_output=True, text=True, check=True).stdout


def run_inline(run: Run) -> Run:
    claimed = services.run_claim(run.pk)
    assert claimed is not None
    executor.execute(claimed)
    run.refresh_from_db()
    return run


def register_template(tmp_path: Path, template_yaml: str, files: dict[str, str] | None = None, *, user=None):
    """Write a template (and skeleton files) under tmp_path and register it; returns the entity."""
    from catalog import services as catalog_services

    folder = tmp_path / unique("tpl")
    folder.mkdir(parents=True)
    (folder / "template.yaml").write_text(textwrap.dedent(template_yaml))
    for rel, content in (files or {}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    plan = catalog_services.location_register(
        target=str(folder / "template.yaml"), actor=user, file_roots=None
    )
    assert not plan.errors, [str(e) for e in plan.errors]
    ref = next(c for c in plan.added + [c for _, c in plan.changed] if c.kind == "Template")
    return template_entity(ref.name)


def ml_values(name: str, owner: str = "fraud-ml", **extra) -> dict:
    return {
        "name": name,
        "title": name.replace("-", " ").title(),
        "description": "Predicts churn.",
        "owner": owner,
        "modelType": "classifier",
        "riskTier": 2,
        "consumesFeatures": ["featureset:default/card-transactions-features"],
        "trainedOn": ["dataset:default/card-transactions-2025"],
        **extra,
    }
