"""Retries, backoff, timeouts and error mapping, against a real HTTP server on a loopback port that
answers from a script (the portal cannot be made to answer 503 or HTML on demand)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from plinth_sdk import AsyncClient, Client, errors


class Scripted:
    def __init__(self):
        self.answers: deque = deque()
        self.seen: list[tuple[str, str, float]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                owner.seen.append((self.command, self.path, time.monotonic()))
                status, headers, body, delay = owner.answers.popleft() if owner.answers else (200, {}, "{}", 0)
                if delay:
                    time.sleep(delay)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                for key, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                # The client may have given up first (the timeout test): what it should do.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status: int, body="{}", headers: dict | None = None, delay: float = 0):
        self.answers.append((status, headers or {}, body, delay))


@pytest.fixture
def server():
    scripted = Scripted()
    yield scripted
    scripted.server.shutdown()
    scripted.server.server_close()


ME = {"username": "alice", "is_platform_admin": False, "teams": []}


def test_429_and_503_are_retried_honouring_retry_after(server):
    server.answer(429, {"error": {"status": 429, "message": "slow down"}}, {"Retry-After": "1"})
    server.answer(503, "<html>busy</html>", {"Content-Type": "text/html"})
    server.answer(200, ME)
    with Client(server.url, "t", backoff=0.05) as client:
        assert client.me().username == "alice"
    times = [t for _, _, t in server.seen]
    assert len(times) == 3 and times[1] - times[0] >= 0.95  # waited as Retry-After said


def test_retries_stop_after_max_retries_with_the_last_error(server):
    for _ in range(3):
        server.answer(502, {"error": {"status": 502, "message": "bad gateway"}})
    with Client(server.url, "t", max_retries=2, backoff=0.01) as client, pytest.raises(errors.ServerError) as exc:
        client.me()
    assert exc.value.status == 502 and len(server.seen) == 3


def test_a_post_is_not_repeated_after_a_503_but_is_after_a_429(server):
    server.answer(503, {"error": {"status": 503, "message": "down"}})
    with Client(server.url, "t", backoff=0.01) as client, pytest.raises(errors.ServerError):
        client.approvals.withdraw(1)
    assert [m for m, _, _ in server.seen] == ["POST"]
    server.answer(429, {"error": {"status": 429, "message": "later"}}, {"Retry-After": "0"})
    server.answer(200, {"id": 1, "state": "withdrawn"})
    with Client(server.url, "t", backoff=0.01) as client:
        assert client.approvals.withdraw(1).state == "withdrawn"


def test_a_body_that_is_not_json_is_a_bad_response(server):
    server.answer(200, "<html>login page of a proxy</html>", {"Content-Type": "text/html"})
    with Client(server.url, "t") as client, pytest.raises(errors.BadResponse) as exc:
        client.me()
    assert "not JSON" in str(exc.value) and "text/html" in str(exc.value)


def test_a_500_is_a_server_error_with_the_request_id(server):
    server.answer(500, {"error": {"status": 500, "message": "Server error."}}, {"X-Request-ID": "req-1"})
    with Client(server.url, "t", max_retries=0) as client, pytest.raises(errors.ServerError) as exc:
        client.me()
    assert exc.value.status == 500 and exc.value.request_id == "req-1"


def test_field_errors_name_the_nested_field(server):
    server.answer(400, {"error": {"status": 400, "message": "files: bad", "details": {
        "files": [{}, {"path": ["No '..' segments."]}]}}})
    with Client(server.url, "t") as client, pytest.raises(errors.ValidationError) as exc:
        client.locations.upload({"catalog-info.yaml": "", "../x": ""}, source="s")
    assert exc.value.field == "files[1].path" and exc.value.code == "invalid"


def test_a_slow_server_times_out(server):
    server.answer(200, ME, delay=2)
    with Client(server.url, "t", timeout=0.3, max_retries=0) as client, pytest.raises(errors.TimeoutError):
        client.me()


def test_tls_to_a_plain_http_port_is_a_tls_error(server):
    with Client(server.url.replace("http://", "https://"), "t", max_retries=3) as client, \
            pytest.raises(errors.TLSError):
        client.me()
    # a TLS failure is final: not retried


def test_a_refused_connection_is_unreachable():
    with Client("http://127.0.0.1:9", "t", max_retries=1, backoff=0.01) as client, \
            pytest.raises(errors.UnreachableError) as exc:
        client.me()
    assert "cannot reach http://127.0.0.1:9" in str(exc.value)


def test_pagination_follows_cursors_one_page_at_a_time(server):
    server.answer(200, {"items": [{"kind": "Model", "metadata": {"name": "a"}}], "pageInfo": {"nextCursor": "c1"}})
    server.answer(200, {"items": [{"kind": "Model", "metadata": {"name": "b"}}], "pageInfo": {"nextCursor": None}})
    with Client(server.url, "t") as client:
        it = client.entities.list(order="metadata.name", page_size=1)  # an order: the paged list
        assert next(it).name == "a" and len(server.seen) == 1  # lazily: the second page is not read yet
        assert [e.name for e in it] == ["b"]
    assert "cursor=c1" in server.seen[1][1]


def _template(name: str) -> dict:
    return {"ref": f"template:default/{name}", "name": name, "parameters": [], "steps": []}


def test_templates_get_walks_every_page_on_both_clients(server):
    """More templates than one page: `get` reads on until it finds the name, sync and async alike."""
    import asyncio

    for _ in range(2):
        server.answer(200, {"items": [_template("a")], "pageInfo": {"nextCursor": "p2"}})
        server.answer(200, {"items": [_template("b")], "pageInfo": {"nextCursor": None}})
    with Client(server.url, "t") as client:
        assert client.templates.get("b").ref == "template:default/b"

    async def main():
        async with AsyncClient(server.url, "t") as client:
            return await client.templates.get("template:default/b")

    # A thread of its own: Playwright's sync API may have left an event loop running in this one.
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(asyncio.run, main()).result(timeout=60).name == "b"
    assert [p for m, p, _ in server.seen][1::2] == ["/api/v1/scaffolder/templates?limit=200&cursor=p2"] * 2
    server.answer(200, {"items": [_template("a")], "pageInfo": {"nextCursor": None}})
    with Client(server.url, "t") as client, pytest.raises(errors.NotFoundError):
        client.templates.get("zzz")


def test_config_precedence_arguments_environment_profile(tmp_path, monkeypatch):
    from plinth_sdk import config

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    for name in ("PLINTH_URL", "PLINTH_TOKEN", "PLINTH_PROFILE", "PLINTH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    path = config.save_profile("prod", url="https://file.example", token="file-token")
    config.save_profile("staging", url="https://staging.example", token="s-token", make_default=False)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert config.resolve() == config.Settings("https://file.example", "file-token", "prod")
    assert config.resolve(profile="staging").url == "https://staging.example"
    monkeypatch.setenv("PLINTH_URL", "https://env.example")
    assert config.resolve().url == "https://env.example" and config.resolve().token == "file-token"
    assert config.resolve(url="https://arg.example", token="arg").token == "arg"
    with pytest.raises(errors.ConfigError, match="unknown profile 'nope'"):
        config.resolve(profile="nope")
