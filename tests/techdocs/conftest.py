"""Fixtures for the docs tests: a repository folder with a descriptor and docs, registered and built."""

from __future__ import annotations

import pytest

from catalog import services as catalog_services
from catalog.models import Entity
from portal.techdocs import services
from tests.factories import write_files

DESCRIPTOR = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  title: {title}
  annotations:
    plinth.dev/techdocs-ref: {ref}
{extra}spec:
  type: service
  lifecycle: production
  owner: {owner}
"""


write = write_files  # {relative path: content} under a folder


@pytest.fixture
def make_docs(tmp_path):
    """make_docs({"docs/index.md": "..."}, name="svc") -> the built entity (registered from a fresh folder)."""
    counter = {"n": 0}

    def make(files: dict[str, str | bytes], *, name: str = "svc", ref: str = "dir:./docs", owner: str = "fraud-ml",
             private: bool = False, extra_annotations: str = "", build: bool = True, title: str = "Scoring service"):
        counter["n"] += 1
        root = tmp_path / f"repo{counter['n']}"
        extra = extra_annotations + ("    plinth.dev/visibility: private\n" if private else "")
        write(root, {"catalog-info.yaml": DESCRIPTOR.format(name=name, title=title, ref=ref, owner=owner, extra=extra),
                     **files})
        plan = catalog_services.location_register(target=str(root / "catalog-info.yaml"), actor=None, file_roots=None)
        assert not plan.errors, [str(e) for e in plan.errors]
        entity = Entity.objects.select_related("location").get(ref=f"component:default/{name}")
        if build:
            services.entity_docs_build(entity=entity)
        return entity

    return make


@pytest.fixture
def alice(client, demo_org):
    client.force_login(demo_org["users"]["alice"])
    return demo_org["users"]["alice"]


@pytest.fixture(autouse=True)
def _no_broker(request, monkeypatch):
    """Builds are run in-process here; only the worker tests publish to a real broker."""
    if request.node.get_closest_marker("worker") is None:
        monkeypatch.setattr("portal.techdocs.receivers.enqueue", lambda refs: None)
