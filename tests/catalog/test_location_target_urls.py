"""A Location descriptor whose target is no URL (`http://[bad`: an unbalanced bracket in the host part)
is an error naming `spec.targets[i]` (or `spec.target`) where the descriptor sits, on a dry run and on a
registration, read from a folder or from a URL — never a 500."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from rest_framework.test import APIClient

from catalog.models import Entity, Location
from portal.accounts.models import Role
from tests.factories import MembershipFactory, TeamFactory

pytestmark = pytest.mark.django_db

BAD = ["http://[bad", "//[bad/x.yaml", "https://[::1/x.yaml"]
COMPONENT = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: good-svc}
spec: {type: service, lifecycle: production, owner: t1}
"""


def location(targets: list[str], target: str | None = None) -> str:
    single = f"target: '{target}', " if target else ""
    listed = ", ".join(f"'{t}'" for t in targets)
    return ("apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: l}\n"
            f"spec: {{{single}targets: [{listed}]}}\n")


@pytest.fixture
def api():
    user = MembershipFactory(team=TeamFactory(name="t1"), role=Role.MAINTAINER).user
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    return client


def _errors(response) -> list[dict]:
    assert response.status_code < 500, response.content[:300]
    return response.json()["errors"]


@pytest.mark.parametrize("bad", BAD)
def test_a_malformed_target_in_a_folder_is_an_error_naming_it(api, write_tree, bad):
    root = write_tree({"catalog-info.yaml": location(["./good.yaml", bad]), "good.yaml": COMPONENT})
    errors = _errors(api.post("/api/v1/locations", {"target": str(root), "dryRun": True}, format="json"))
    assert [(e["field"], e["line"]) for e in errors] == [("spec.targets[1]", 4)]
    assert bad in errors[0]["message"] and "not a valid URL" in errors[0]["message"]
    assert not Location.objects.exists()  # a dry run stores nothing

    # Registered: the good target is read, the bad one stays an error of the location.
    response = api.post("/api/v1/locations", {"target": str(root)}, format="json")
    assert response.status_code == 201, response.content[:300]
    assert [e["field"] for e in response.json()["errors"]] == ["spec.targets[1]"]
    assert Entity.objects.filter(ref="component:default/good-svc").exists()


def test_the_single_target_is_named_spec_target(api, write_tree):
    root = write_tree({"catalog-info.yaml": location(["//[bad/x.yaml"], target="http://[bad")})
    errors = _errors(api.post("/api/v1/locations", {"target": str(root), "dryRun": True}, format="json"))
    assert [e["field"] for e in errors] == ["spec.target", "spec.targets[0]"]


@pytest.fixture
def served(settings):
    """A plain web server on 127.0.0.1 (the catalog may read private addresses here): path → bytes."""
    settings.PLINTH_CATALOG_ALLOW_PRIVATE_URLS = True
    settings.PLINTH_CATALOG_ALLOWED_HOSTS = []
    files: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's name
            body = files.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


def test_a_malformed_target_of_a_descriptor_read_from_a_url(api, served):
    base, files = served
    files["/catalog-info.yaml"] = location(["good.yaml", *BAD]).encode()
    files["/good.yaml"] = COMPONENT.encode()
    errors = _errors(api.post("/api/v1/locations", {"target": f"{base}/catalog-info.yaml", "dryRun": True},
                              format="json"))
    assert [e["field"] for e in errors] == ["spec.targets[1]", "spec.targets[2]", "spec.targets[3]"]
    assert all(e["source"] == f"{base}/catalog-info.yaml" for e in errors)
