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
        self.received: list[tuple[dict, bytes]] = []  # (headers, body) of each request, as seen
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                owner.seen.append((self.command, self.path, time.monotonic()))
                owner.received.append((dict(self.headers), body))
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


@pytest.fixture
def tls_server(tmp_path):
    """An https server on a loopback port with a self-signed certificate no CA vouches for; `seen`
    lists the Authorization header of every request that got through the handshake."""
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            data = json.dumps(ME).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}", seen
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("scheme", ["https", "HTTPS", "Https"])
def test_an_https_url_is_verified_whatever_the_case_of_its_scheme(tls_server, scheme):
    """`HTTPS://…` is https: an untrusted certificate fails the handshake, and no token is sent."""
    address, seen = tls_server
    with Client(f"{scheme}://{address}", "plt_SECRET", max_retries=0) as client, pytest.raises(errors.TLSError):
        client.me()
    assert seen == []


def test_a_token_is_stripped_and_one_that_cannot_be_sent_is_refused_unshown(server, monkeypatch):
    server.answer(200, ME)
    with Client(server.url, "  plinth_abc_def\r\n") as client:
        assert client.me().username == "alice"
    assert server.received[0][0]["Authorization"] == "Bearer plinth_abc_def"
    monkeypatch.setenv("PLINTH_TOKEN", "plinth_abc\rdef")
    for token in ("plinth_sec ret", "plinth_sécret", "plinth\x00secret", None):
        with pytest.raises(errors.ConfigError) as exc:
            Client(server.url, token)
        assert "secret" not in str(exc.value) and "plinth_abc" not in str(exc.value) and "token" in str(exc.value)
    assert "PLINTH_TOKEN" in str(exc.value)
    assert len(server.seen) == 1  # nothing was sent with them


@pytest.mark.parametrize("url", ["ftp://plinth.example.com", "localhost:8000", "plinth.example.com", "http://",
                                 "http://[::1", "https://host:port", "file:///etc/passwd"])
def test_a_url_that_is_not_an_http_address_is_a_config_error_at_once(url):
    started = time.monotonic()
    with pytest.raises(errors.ConfigError, match="is not an http:// or https:// address"):
        Client(url, "t", backoff=1)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(("body", "shape"), [("[1,2,3]", "a JSON array"), ('"hello"', "a JSON string"),
                                            ("null", "null"), ("{}", "an empty JSON object"),
                                            ('{"user": "x"}', "without 'username'")])
def test_json_of_another_shape_is_a_bad_response(server, body, shape):
    server.answer(200, body)
    with Client(server.url, "t") as client, pytest.raises(errors.BadResponse) as exc:
        client.me()
    assert shape in str(exc.value) and "not the API's JSON" in str(exc.value)


@pytest.mark.parametrize("body", ["[1,2,3]", '"hello"', "null", "{}", '{"items": {"a": 1}}', '{"items": [1]}'])
def test_a_listing_of_another_shape_is_a_bad_response(server, body):
    server.answer(200, body)
    with Client(server.url, "t") as client, pytest.raises(errors.BadResponse, match="not .*the API's JSON"):
        list(client.tokens.list())


def test_an_api_error_message_is_one_line(server):
    server.answer(400, {"error": {"status": 400, "message": "bad\nvalue   here\n", "details": {"name": ["x"]}}})
    with Client(server.url, "t") as client, pytest.raises(errors.ValidationError) as exc:
        client.me()
    assert str(exc.value) == "name: bad value here" and exc.value.message == "bad\nvalue   here\n"


def test_profiles_with_any_text_are_written_as_valid_toml(tmp_path, monkeypatch):
    """Emoji (non-BMP), accents, quotes, backslashes and control characters in a profile name or URL:
    the file stays TOML that reads back to the same values."""
    import tomllib

    from plinth_sdk import config

    monkeypatch.setenv("PLINTH_CONFIG", str(tmp_path / "config.toml"))
    for name in ("PLINTH_URL", "PLINTH_TOKEN", "PLINTH_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    names = ["équipe-🚀", 'quote"back\\slash', "tab\there\x7f\x01", "plain"]
    for i, name in enumerate(names):
        config.save_profile(name, url=f"https://h{i}.example/🚀", token=f"tok{i}")
    data = tomllib.loads((tmp_path / "config.toml").read_text(encoding="utf-8"))
    assert set(data["profiles"]) == set(names) and data["default_profile"] == names[0]
    assert "🚀" in (tmp_path / "config.toml").read_text(encoding="utf-8")  # as it is, not escaped
    assert config.resolve(profile="équipe-🚀") == config.Settings("https://h0.example/🚀", "tok0", "équipe-🚀")
    with pytest.raises(errors.ConfigError, match="not valid text"):
        config.save_profile("bad\udcff", url="https://x.example", token="t")
    assert tomllib.loads((tmp_path / "config.toml").read_text(encoding="utf-8"))["profiles"].keys() == set(names)


def test_an_environment_profile_that_does_not_exist_yet_is_not_needed_with_url_and_token(tmp_path, monkeypatch):
    from plinth_sdk import config

    monkeypatch.setenv("PLINTH_CONFIG", str(tmp_path / "config.toml"))
    monkeypatch.setenv("PLINTH_PROFILE", "staging")
    for name in ("PLINTH_URL", "PLINTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert config.resolve("https://s.example", "t") == config.Settings("https://s.example", "t", None)
    with pytest.raises(errors.ConfigError, match="unknown profile 'staging'"):
        config.resolve("https://s.example")  # the token would come from it
    with pytest.raises(errors.ConfigError, match="unknown profile 'nope'"):
        config.resolve("https://s.example", "t", profile="nope")  # named by the caller: must exist


def test_a_header_http_refuses_is_final_and_not_quoted(server):
    """A request that cannot be written (here a user agent with a line break) is not retried, and the
    error never quotes the headers (they hold the token)."""
    with Client(server.url, "plinth_SECRET", user_agent="agent\r\nX-Evil: 1", max_retries=3, backoff=0.01) as client, \
            pytest.raises(errors.ConfigError, match="a header value holds characters") as exc:
        client.me()
    assert "SECRET" not in str(exc.value) and "Evil" not in str(exc.value) and not server.seen
