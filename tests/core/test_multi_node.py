"""No state on a node's disk (docs/deployment.md#no-state-on-a-nodes-disk): two web nodes and a worker
node, real separate processes with a PLINTH_VAR_DIR each, sharing only PostgreSQL, Redis and the
storage — run twice: with a shared folder (`PLINTH_STORAGE_ROOT`) and with object storage
(`PLINTH_S3_BUCKET`: django-storages' S3 backend and boto3 for real, against moto's S3-compatible HTTP
server, the one part that stands in for what cannot run here).

Docs registered through one web node are built by the worker and served by both web nodes; descriptors
uploaded as content to one web node are read by the worker and the other web node from the database; a template
run started on one web node (with a secret, handed over through the database) is packed by the worker
and downloaded from the other web node, and its git repository published by the worker is downloaded
from a web node and its descriptor refreshed by another; a cost export uploaded to one web node is imported by the worker
and reported by the other."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
import requests
from django.test import Client

from portal.accounts import services as account_services
from tests import services as test_services

pytestmark = [pytest.mark.prod_smoke, pytest.mark.worker, pytest.mark.usefixtures("postgres_only")]

ROOT = Path(__file__).resolve().parents[2]

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: nodes-zip, title: Zip across nodes}
spec:
  owner: fraud-ml
  type: test
  parameters:
    - properties:
        name: {type: string, ui:field: EntityNamePicker}
        token: {type: string, ui:field: Secret}
  steps:
    - {id: docs, action: "fetch:plain", input: {url: ./skeleton}}
    - {id: write, action: catalog:write, input: {entity: {apiVersion: backstage.io/v1alpha1, kind: Component,
        metadata: {name: "${{ parameters.name }}", annotations: {plinth.dev/techdocs-ref: "dir:./docs"}},
        spec: {type: library, lifecycle: experimental, owner: fraud-ml}}}}
    - {id: zip, action: publish:zip, input: {}}
    - {id: publish, action: "publish:git", input: {repoUrl: "local?owner=fraud-ml&repo=${{ parameters.name }}"}}
    - {id: register, action: "catalog:register", input: {repoContentsUrl: "${{ steps.publish.output.repoContentsUrl }}"}}
  output:
    links: [{title: Download, url: "${{ steps.zip.output.downloadUrl }}"}]
"""

DESCRIPTOR = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: nodes-docs
  annotations: {plinth.dev/techdocs-ref: "dir:./docs"}
spec: {type: service, lifecycle: production, owner: fraud-ml}
"""


class Node:
    """A process of the deployment: its command, its own var dir, its log."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], var_dir: Path) -> None:
        self.name, self.var_dir = name, var_dir
        self.log = var_dir / f"{name}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out,  # noqa: S603
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def tail(self) -> str:
        return f"--- {self.name} ---\n" + self.log.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect (to the sign-in page) is the answer itself


_OPENER = urllib.request.build_opener(_NoRedirect)


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 (loopback, our own node)
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()
    except urllib.error.URLError:  # not listening (yet)
        return 0, {}, b""


def _post_json(url: str, headers: dict[str, str], body: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                     headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _until(what: str, check, nodes: list[Node], timeout: float = 45.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline or any(n.proc.poll() is not None for n in nodes):
            pytest.fail(f"{what} did not happen in {timeout:.0f} s\n" + "\n".join(n.tail() for n in nodes))
        time.sleep(0.3)


class FolderStorage:
    """A folder outside every node's var dir: a shared mount."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {"PLINTH_STORAGE_ROOT": str(folder)}

    def names(self) -> set[str]:
        return _files_under(self.folder) if self.folder.exists() else set()


class S3Storage:
    """A bucket on moto's S3 server (HTTP on a loopback port, started here), reached by the nodes through
    django-storages' S3 backend with a key prefix, credentials from the AWS_* variables as boto3 reads them."""

    PREFIX = "plinth-nodes"

    def __init__(self) -> None:
        import boto3
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=test_services.free_port(), verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        endpoint, self.bucket = f"http://{host}:{port}", f"plinth-nodes-{os.getpid()}"
        credentials = {"AWS_ACCESS_KEY_ID": "plinth-nodes-key", "AWS_SECRET_ACCESS_KEY": "plinth-nodes-secret"}
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                   aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                                   aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"])
        self.client.create_bucket(Bucket=self.bucket)
        self.env = {"PLINTH_S3_BUCKET": self.bucket, "PLINTH_S3_PREFIX": self.PREFIX, "PLINTH_S3_REGION": "us-east-1",
                    "PLINTH_S3_ENDPOINT_URL": endpoint, **credentials}

    def names(self) -> set[str]:
        listed = self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        assert all(o["Key"].startswith(f"{self.PREFIX}/") for o in listed), listed  # the prefix is kept
        return {o["Key"].removeprefix(f"{self.PREFIX}/") for o in listed}

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture(params=["folder", "s3"])
def storage(request, tmp_path):
    if request.param == "folder":
        yield FolderStorage(tmp_path / "storage")
        return
    store = S3Storage()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture
def deployment(transactional_db, redis_url, tmp_path, storage):
    """Web nodes `a` and `b` (`manage.py runserver --noreload`) and a worker node, each with a var dir of
    its own, sharing `storage` (a folder or a bucket); `sources` where the registered folders live (what
    a git host would hold)."""
    from tests.conftest import _broker_url, _test_database_url

    sources = tmp_path / "sources"
    sources.mkdir()
    base = {k: v for k, v in os.environ.items()
            if k not in ("PLINTH_SCAFFOLDER_ROOT", "PLINTH_STORAGE_ROOT") and not k.startswith(("PLINTH_S3_", "AWS_"))}
    base.update({"DJANGO_SETTINGS_MODULE": "portal.settings.test", "DATABASE_URL": _test_database_url(),
                 "REDIS_URL": redis_url, "CELERY_BROKER_URL": _broker_url(redis_url), **storage.env,
                 "PLINTH_CATALOG_FILE_ROOTS": str(sources),
                 "PLINTH_HEARTBEAT_SECONDS": "1", "PYTHONUNBUFFERED": "1"})
    nodes: dict[str, Node] = {}
    ports: dict[str, int] = {}
    try:
        for name in ("worker", "a", "b"):
            var_dir = tmp_path / f"var-{name}"
            var_dir.mkdir()
            env = {**base, "PLINTH_VAR_DIR": str(var_dir)}
            if name == "worker":
                cmd = [sys.executable, "-m", "celery", "-A", "portal", "worker", "-n", f"nodes-{os.getpid()}@worker",
                       "-l", "info", "--pool", "prefork", "--concurrency", "1", "--without-mingle", "--without-gossip"]
            else:
                ports[name] = test_services.free_port()
                cmd = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{ports[name]}"]
            nodes[name] = Node(name, cmd, env, var_dir)
        for name, port in ports.items():
            _until(f"web node {name} answering", lambda port=port: _get(f"http://127.0.0.1:{port}/healthz", {})[0] == 200,
                   list(nodes.values()), timeout=40)
        yield {"nodes": nodes, "urls": {n: f"http://127.0.0.1:{p}" for n, p in ports.items()},
               "storage": storage, "sources": sources}
    finally:
        for node in nodes.values():
            node.stop()


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_two_web_nodes_and_a_worker_share_nothing_but_the_database_redis_and_storage(deployment):
    from catalog import services as catalog_services
    from portal.accounts import demo as org_demo

    nodes, urls, sources = deployment["nodes"], deployment["urls"], deployment["sources"]
    alice = org_demo.load_org()["users"]["alice"]
    _, token = account_services.token_create(user=alice, name="nodes")
    api = {"Authorization": f"Bearer {token}"}
    browser = Client()
    browser.force_login(alice)  # a session row in the shared database: valid on every web node
    session = {"Cookie": "; ".join(f"{k}={v.value}" for k, v in browser.cookies.items())}

    # Docs: registered through web node a, built by the worker, served by both web nodes.
    folder = sources / "nodes-docs"
    (folder / "docs").mkdir(parents=True)
    (folder / "catalog-info.yaml").write_text(DESCRIPTOR)
    (folder / "docs" / "index.md").write_text("# Across nodes\n\nBuilt on the worker, served everywhere.\n")
    status, body = _post_json(f"{urls['a']}/api/v1/locations", api, {"target": str(folder / "catalog-info.yaml")})
    assert status in (200, 201), body
    page = "/docs/component/default/nodes-docs/"
    for name in ("a", "b"):
        status, headers, html = _until(
            f"the docs page on web node {name}",
            lambda name=name: (r := _get(urls[name] + page, session))[0] == 200 and b"Built on the worker" in r[2] and r,
            list(nodes.values()))
        assert headers["Content-Type"].startswith("text/html") and b"Across nodes" in html
    status, _, api_page = _get(f"{urls['b']}/api/v1/techdocs/sites/component/default/nodes-docs/page?path=", api)
    assert status == 200 and "served everywhere" in api_page.decode()

    # Descriptors uploaded as content to web node a (what `plinth catalog register ./folder` sends): the
    # files are stored in the database; the worker builds the docs from its own copy, web node b serves
    # them and refreshes the location from its own copy, and an upload through web node b replaces them.
    uploaded_files = [{"path": "catalog-info.yaml", "content": DESCRIPTOR.replace("nodes-docs", "nodes-upload")},
                      {"path": "docs/index.md", "content": "# Uploaded\n\nSent to node a, built on the worker.\n"}]
    status, body = _post_json(f"{urls['a']}/api/v1/locations/upload", api,
                              {"source": "github.com/acme/nodes-upload", "files": uploaded_files})
    assert status == 201, body
    for copy in nodes["a"].var_dir.glob("catalog-uploads*"):
        shutil.rmtree(copy)  # node a's own copy gone: the others can only have read the database
    page = "/docs/component/default/nodes-upload/"
    _until("the uploaded docs on web node b",
           lambda: (r := _get(urls["b"] + page, session))[0] == 200 and b"built on the worker" in r[2],
           list(nodes.values()))
    status, body = _post_json(f"{urls['b']}/api/v1/refresh", api, {"entityRef": "component:default/nodes-upload"})
    refreshed = json.loads(body)
    assert status == 200 and (refreshed["added"], refreshed["changed"], refreshed["unchanged"]) == ([], [], 1), body
    uploaded_files[0]["content"] = uploaded_files[0]["content"].replace("metadata:\n", "metadata:\n  title: Again\n", 1)
    uploaded_files[1]["content"] = "# Uploaded\n\nSent again, to node b.\n"
    status, body = _post_json(f"{urls['b']}/api/v1/locations/upload", api,
                              {"source": "github.com/acme/nodes-upload", "files": uploaded_files})
    assert status == 200, body
    _until("the second upload's docs on web node a",
           lambda: (r := _get(urls["a"] + page, session))[0] == 200 and b"Sent again, to node b" in r[2],
           list(nodes.values()))
    for name in ("worker", "b"):  # each read its own copy, made from the database
        copies = [f for f in _files_under(nodes[name].var_dir) if "nodes-upload" in f and f.endswith("docs/index.md")]
        assert len(copies) == 1 and "catalog-uploads" in copies[0], (name, copies)

    # A template run: started on web node a with a secret, packed by the worker, downloaded from web node b.
    template = sources / "nodes-template"
    template.mkdir()
    (template / "template.yaml").write_text(TEMPLATE)
    (template / "skeleton" / "docs").mkdir(parents=True)
    (template / "skeleton" / "docs" / "index.md").write_text("# Scaffolded\n\nPublished on the worker.\n")
    plan = catalog_services.location_register(target=str(template / "template.yaml"), actor=None, file_roots=None)
    assert not plan.errors, [str(e) for e in plan.errors]
    secret = "nodes-SECRET-4711"
    status, body = _post_json(f"{urls['a']}/api/v1/scaffolder/runs", api, {
        "templateRef": "template:default/nodes-zip", "values": {"name": "zipped-across", "token": secret}})
    assert status == 201, body
    run_id = json.loads(body)["id"]
    run = _until("the run to end", lambda: (r := json.loads(_get(f"{urls['b']}/api/v1/scaffolder/runs/{run_id}", api)[2]))
                 ["status"] in ("succeeded", "failed") and r, list(nodes.values()), timeout=60)
    assert run["status"] == "succeeded", run
    status, headers, archive = _get(f"{urls['b']}/create/runs/{run_id}/download/", session)
    assert status == 200 and headers["Content-Type"] == "application/zip", headers
    assert "name: zipped-across" in zipfile.ZipFile(io.BytesIO(archive)).read("catalog-info.yaml").decode()
    assert _get(f"{urls['a']}/create/runs/{run_id}/download/", {})[0] in (302, 404), "not without signing in"
    # Its git repository, published on the worker, downloaded from web node b as a bundle and cloned; the
    # name is taken for every node (web node a's name check); the registered descriptor and its docs are
    # read from the database by web node b (a refresh) and the worker (the docs build).
    repository = "/create/repositories/fraud-ml/zipped-across.bundle"
    status, headers, bundle = _get(urls["b"] + repository, session)
    assert status == 200 and headers["Content-Type"] == "application/octet-stream", headers
    (sources / "zipped-across.bundle").write_bytes(bundle)
    subprocess.run(["git", "clone", "-q", str(sources / "zipped-across.bundle"), str(sources / "clone")], check=True)
    assert "name: zipped-across" in (sources / "clone" / "catalog-info.yaml").read_text()
    assert _get(urls["a"] + repository, {})[0] in (302, 404), "not without signing in"
    status, _, check = _get(f"{urls['a']}/create/templates/default/nodes-zip/check-name/?p.name=zipped-across",
                            {**session, "HX-Request": "true"})
    assert status == 200 and b"A repository fraud-ml/zipped-across already exists" in check, check[:500]
    _until("the published docs on web node b",
           lambda: (r := _get(urls["b"] + "/docs/component/default/zipped-across/", session))[0] == 200
           and b"Published on the worker" in r[2], list(nodes.values()))
    status, body = _post_json(f"{urls['b']}/api/v1/refresh", api, {"entityRef": "component:default/zipped-across"})
    assert status == 200 and json.loads(body)["unchanged"] == 1, body

    # A cost export uploaded to web node a (a platform admin), imported by the worker, seen from web node b.
    from tests.costs.conftest import line, write_csv

    grace = account_services.token_create(user=org_demo.load_org()["users"]["grace"], name="nodes")[1]
    export = write_csv(sources / "export.csv", [line("12.5", tags={"team": "fraud-ml"}), line("2")])
    with export.open("rb") as fh:
        uploaded = requests.post(f"{urls['a']}/api/v1/costs/imports", data={"provider": "aws"}, files={"file": fh},
                                 headers={"Authorization": f"Bearer {grace}"}, timeout=10)
    assert uploaded.status_code in (201, 202), uploaded.text
    imported = _until("the worker's cost import", lambda: (r := requests.get(
        f"{urls['b']}/api/v1/costs/imports/{uploaded.json()['id']}", headers={"Authorization": f"Bearer {grace}"},
        timeout=10).json())["status"] in ("done", "failed") and r, list(nodes.values()), timeout=60)
    assert imported["status"] == "done" and imported["rows"] == 2, imported

    from portal.scaffolder.models import PublishedRepository

    published_bundle = f"scaffolder/repositories/{PublishedRepository.objects.get(name='zipped-across').uid}.bundle"
    # What crossed the nodes went through the shared storage and the database, nothing else: the worker
    # deletes the imported export from the storage right after it reports the import done.
    _until("the imported export deleted from the storage",
           lambda: deployment["storage"].names() == {f"scaffolder/downloads/{run_id}.zip", published_bundle},
           list(nodes.values()),
           timeout=20)
    for name, node in nodes.items():
        left = {f for f in _files_under(node.var_dir) if not f.endswith(".log")}
        assert not any(secret in (node.var_dir / f).read_text(errors="replace") for f in left), name
        assert not any(f.endswith(".zip") for f in left), (name, left)
