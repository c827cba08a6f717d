"""Request body caps: 413 naming the limit (JSON for the API, the error page for pages), nothing
changed; chunked bodies and lying Content-Length headers against a real gunicorn, which is also
where the API rate limit is shown to hold across worker processes."""

import contextlib
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.test import Client
from gunicorn import config as gunicorn_config

from catalog.models import Location
from portal.accounts import services
from portal.core import throttling
from portal.core.limits import COMMENT, FORM
from tests import services as test_services
from tests.factories import PASSWORD, UserFactory

ROOT = Path(__file__).resolve().parents[2]
VALID = {"entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "svc"},
                    "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}}}


def padded(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    head = b'{"target": "x", "pad": "'
    return head + b"a" * (size - len(head) - 2) + b'"}'


# -- in-process: Content-Length over the cap ---------------------------------------------------

@pytest.mark.django_db
def test_api_body_over_the_endpoint_cap_is_413_naming_the_limit(settings, tmp_path):
    settings.PLINTH_CATALOG_FILE_ROOTS = [str(tmp_path)]
    _, raw = services.token_create(user=UserFactory(is_superuser=True), name="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api.post("/api/v1/locations", padded(FORM + 1), content_type="application/json")
    assert response.status_code == 413
    assert response.json() == {"error": {"status": 413, "limit": FORM, "message":
        f"The request body is too large: this endpoint accepts at most {FORM:,} bytes (this one has {FORM + 1:,} bytes)."}}
    assert not Location.objects.exists()
    # At the cap it is read (and refused for what it says, not for its size).
    assert api.post("/api/v1/locations", padded(FORM), content_type="application/json").status_code == 400


@pytest.mark.django_db
def test_validate_accepts_a_large_descriptor_but_not_more_than_its_own_cap(settings):
    _, raw = services.token_create(user=UserFactory(), name="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    descriptor = ("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: big\n"
                  "  description: " + "d" * (1024 * 1024 + 10) + "\nspec: {type: service, lifecycle: x, owner: t}\n")
    big = api.post("/api/v1/validate-entity", {"yaml": descriptor}, content_type="application/json")
    assert big.status_code in (200, 400) and "documents" in big.json(), "over the global cap, under validate's"
    over = api.post("/api/v1/validate-entity", padded(settings.PLINTH_MAX_VALIDATE_BYTES + 1),
                    content_type="application/json")
    assert over.status_code == 413 and over.json()["error"]["limit"] == settings.PLINTH_MAX_VALIDATE_BYTES


@pytest.mark.django_db
def test_a_comment_over_its_cap_is_refused_and_stores_nothing(demo_org):
    from portal.governance.models import Comment

    _, raw = services.token_create(user=demo_org["users"]["alice"], name="t")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = json.dumps({"body": "é" * (COMMENT // 2)}).encode()
    response = api.post("/api/v1/approval-requests/1/comments", body, content_type="application/json")
    assert response.status_code == 413 and response.json()["error"]["limit"] == COMMENT
    assert not Comment.objects.exists()


@pytest.mark.django_db
def test_the_global_cap_applies_where_no_endpoint_sets_one(settings):
    settings.PLINTH_MAX_REQUEST_BYTES = 4096
    client = Client()
    client.force_login(UserFactory())
    response = client.post("/search/", {"q": "x" * 5000})
    assert response.status_code == 413
    assert "at most 4,096 bytes" in response.content.decode()


@pytest.mark.django_db
def test_an_oversized_sign_in_form_gets_the_error_page_and_signs_nobody_in():
    UserFactory(username="ann")
    client = Client()
    response = client.post("/accounts/sign-in/", {"username": "ann", "password": PASSWORD, "pad": "x" * FORM})
    assert response.status_code == 413
    page = response.content.decode()
    assert "Request too large" in page and f"at most {FORM:,} bytes" in page
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_a_page_form_over_the_cap_is_refused_before_any_of_it_is_read(monkeypatch):
    """The NUL check of page forms reads the body only after the cap was checked: a 20 MiB file sent to the
    sign-in page (anonymous, 16 KiB cap) or to a page that does not exist is never parsed or spooled."""
    import io

    from django.core.files.uploadhandler import MemoryFileUploadHandler, TemporaryFileUploadHandler

    received = []
    for handler in (TemporaryFileUploadHandler, MemoryFileUploadHandler):
        original = handler.receive_data_chunk
        monkeypatch.setattr(handler, "receive_data_chunk",
                            lambda self, raw, start, original=original: received.append(len(raw)) or original(self, raw, start))
    big = io.BytesIO(b"x" * (20 * 1024 * 1024))
    big.name = "big.bin"
    assert Client().post("/accounts/sign-in/", {"username": "a", "password": "b", "f": big}).status_code == 413
    assert Client().post("/no-such-page/", {"f": io.BytesIO(b"y" * (3 * 1024 * 1024))}).status_code == 404
    assert sum(received) == 0


@pytest.mark.django_db
def test_a_chunked_page_form_is_read_once_put_back_as_sized():
    """gunicorn hands a chunked body on with `wsgi.input_terminated`: the cap reads it and puts it back, and the
    form is parsed from that (before, the NUL check had parsed the unsized body as empty: a 400)."""
    import io

    UserFactory(username="ann")
    body = f"username=ann&password={PASSWORD}"
    client = Client()
    response = client.generic("POST", "/accounts/sign-in/", body, content_type="application/x-www-form-urlencoded",
                              CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked",
                              **{"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(body.encode())})
    assert response.status_code == 302 and "_auth_user_id" in client.session
    nul = "username=ann&password=x%00y"
    response = Client().generic("POST", "/accounts/sign-in/", nul, content_type="application/x-www-form-urlencoded",
                                CONTENT_LENGTH="", HTTP_TRANSFER_ENCODING="chunked",
                                **{"wsgi.input_terminated": True, "wsgi.input": io.BytesIO(nul.encode())})
    assert response.status_code == 400 and "password" in response.content.decode()


@pytest.mark.django_db
def test_a_malformed_content_length_is_400(client):
    client.force_login(UserFactory())
    response = client.generic("POST", "/api/v1/validate-entity", b"{}", content_type="application/json",
                              CONTENT_LENGTH="12abc")
    assert response.status_code == 400 and "Content-Length" in response.json()["error"]["message"]


@pytest.mark.django_db
def test_django_request_size_guards_answer_with_their_limit(client, settings):
    """What Django itself refuses (too many fields) is a clear 400 naming the limit, not a bare one."""
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    client.force_login(UserFactory())
    response = client.post("/accounts/tokens/", {f"f{i}": "x" for i in range(20)})
    assert response.status_code == 400 and "at most 10 fields" in response.content.decode()


# -- a real gunicorn ---------------------------------------------------------------------------

@pytest.fixture
def gunicorn(transactional_db, redis_url, tmp_path):
    """gunicorn with two sync workers, each replaced after two requests (so the counting is seen
    across processes that share nothing but Redis and the database), and small limits."""
    from tests.conftest import _test_database_url

    port = test_services.free_port()
    log = tmp_path / "gunicorn.log"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings.test", "DATABASE_URL": _test_database_url(),
           "REDIS_URL": redis_url, "PLINTH_API_RATE_READ": "4/hour", "PLINTH_CATALOG_FILE_ROOTS": str(tmp_path)}
    cmd = [sys.executable, "-m", "gunicorn", "portal.wsgi:application", "--bind", f"127.0.0.1:{port}",
           "--workers", "2", "--max-requests", "2", "--preload", "--access-logfile", "-",
           "--access-logformat", "pid=%(p)s status=%(s)s %(r)s"]
    if "control_socket_disable" in {s.name for s in gunicorn_config.KNOWN_SETTINGS}:
        cmd.append("--no-control-socket")  # gunicorn 26+: one per home directory, shared by concurrent runs
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,  # noqa: S603
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if _request(port, "GET", "/healthz")[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("gunicorn did not start:\n" + log.read_text(errors="replace")[-3000:])
            time.sleep(0.2)
        yield port, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 15)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)


def _request(port: int, method: str, path: str, body=None, headers=None, chunked=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _chunks(data: bytes, size: int = 4096):
    for i in range(0, len(data), size):
        yield data[i:i + size]


def test_chunked_bodies_are_read_up_to_the_cap_and_refused_beyond(gunicorn, tmp_path):
    port, _ = gunicorn
    user = UserFactory(is_superuser=True)
    _, raw = services.token_create(user=user, name="t")
    auth = {"Authorization": f"Bearer {raw}", "Content-Type": "application/json"}

    status, _, body = _request(port, "POST", "/api/v1/locations", _chunks(padded(FORM + 5000)), auth, chunked=True)
    assert status == 413, body
    assert json.loads(body)["error"]["limit"] == FORM

    ok = json.dumps(VALID).encode()
    status, _, body = _request(port, "POST", "/api/v1/validate-entity", _chunks(ok, 16), auth, chunked=True)
    assert (status, json.loads(body)["valid"]) == (200, True), "a chunked body under the cap is read whole"
    assert not Location.objects.exists()


def test_a_content_length_smaller_than_the_body_reads_only_what_it_declares(gunicorn, tmp_path):
    port, _ = gunicorn
    _, raw = services.token_create(user=UserFactory(is_superuser=True), name="t")
    target = tmp_path / "catalog-info.yaml"
    target.write_text("apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: lie}\n"
                      "spec: {type: service, lifecycle: production, owner: team-a}\n")
    body = json.dumps({"target": str(target), "pad": "a" * 200_000}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(f"POST /api/v1/locations HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {raw}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: 60\r\nConnection: close\r\n\r\n".encode()
                     + body)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 400"), reply[:200]
    assert b'"status":400' in reply and b"JSON parse error" in reply
    assert not Location.objects.exists()


def test_the_rate_limit_holds_across_worker_processes(gunicorn):
    port, log = gunicorn
    token, raw = services.token_create(user=UserFactory(), name="t")
    started = time.time()
    statuses = [_request(port, "GET", "/api/v1/me", headers={"Authorization": f"Bearer {raw}"})
                for _ in range(6)]
    finished = time.time()
    assert [s for s, _, _ in statuses] == [200, 200, 200, 200, 429, 429]
    # 4/hour, the four accepted requests in one window (six requests rarely straddle two): in the next
    # window they weigh 4 × (1 − elapsed), so one more fits once a quarter of it has gone, that is
    # up to 1.25 hours away. The window starts at the token's own offset.
    offset = throttling.window_offset(f"token:{token.pk}", 3600)
    gone = {((moment - offset) % 3600) / 3600 for moment in (started, finished)}
    expected = sorted((1 - elapsed + 0.25) * 3600 for elapsed in gone)
    assert expected[0] - 2 <= int(statuses[4][1]["Retry-After"]) <= expected[-1] + 2, (statuses[4][1], expected)
    served_by = set(re.findall(r"pid=<(\d+)> status=\d+ GET /api/v1/me", log.read_text()))
    assert len(served_by) >= 3, f"each worker serves two requests, then a new process takes over: {served_by}"
