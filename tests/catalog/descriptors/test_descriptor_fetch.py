"""fetch_url against a local HTTP server: address checks, redirects, caps, deadline, pinning."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from catalog.descriptors import fetch
from catalog.descriptors.errors import DescriptorError
from catalog.descriptors.fetch import address_problem, fetch_url, host_allowed

MiB = 1024 * 1024


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):  # noqa: C901 - a routing table for the tests
        p = self.path
        if p == "/file":
            self._send(200, b"kind: Component\n", [("X-Host", self.headers["Host"])])
        elif p == "/host":
            self._send(200, self.headers["Host"].encode())
        elif p == "/metadata":
            self._send(302, headers=[("Location", "http://169.254.169.254/latest/meta-data/")])
        elif p in ("/loop-a", "/loop-b"):
            self._send(302, headers=[("Location", "/loop-b" if p == "/loop-a" else "/loop-a")])
        elif p.startswith("/chain/"):
            n = int(p.rsplit("/", 1)[1])
            self._send(302, headers=[("Location", f"/chain/{n - 1}" if n > 0 else "/file")])
        elif p == "/big":
            self._send(200, b"x" * (3 * MiB))
        elif p == "/big-unannounced":
            self.send_response(200)
            self.end_headers()
            for _ in range(48):
                self.wfile.write(b"x" * 65536)
        elif p == "/slow":
            self.send_response(200)
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        elif p == "/slow-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            try:
                for i in range(1000):
                    self.wfile.write(f"X-{i}: a\r\n".encode())
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        elif p == "/404":
            self._send(404, b"no")
        else:
            self._send(500)


@pytest.fixture(scope="module")
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def get(url, **kw):
    opts = {"allowed_hosts": None, "allow_private": True, "max_bytes": 2 * MiB, "timeout": 5.0}
    opts.update(kw)
    return fetch_url(url, **opts)


def test_loopback_refused_unless_allowed(server):
    with pytest.raises(DescriptorError, match="refused: 127.0.0.1 is a loopback address"):
        get(server + "/file", allow_private=False)
    body, final = get(server + "/file")
    assert body == b"kind: Component\n" and final == server + "/file"


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://localhost/",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
    ],
)
def test_private_forms_refused(url):
    with pytest.raises(DescriptorError, match="refused"):
        get(url, allow_private=False)


@pytest.mark.parametrize(
    "url,fragment",
    [
        ("http://169.254.169.254/latest/meta-data/", "refused: 169.254.169.254 is a link-local address"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://0.0.0.0/", "unspecified"),
        ("http://224.0.0.1/", "multicast"),
        ("http://240.0.0.1/", "reserved"),
        ("ftp://example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http://user:pw@example.com/", "credentials"),
    ],
)
def test_always_refused_even_with_allow_private(url, fragment):
    with pytest.raises(DescriptorError, match=fragment):
        get(url)


def test_address_problem_embedded_ipv4():
    assert "loopback" in address_problem("::ffff:7f00:1", allow_private=False)
    assert "link-local" in address_problem("64:ff9b::a9fe:a9fe", allow_private=False)
    assert address_problem("8.8.8.8", allow_private=False) is None
    assert "not a public" in address_problem("100.64.0.1", allow_private=False)


def test_host_allow_list(server):
    assert host_allowed("a.example.com", ["*.example.com"]) and not host_allowed(
        "example.com", ["*.example.com"]
    )
    assert not host_allowed("evil-example.com", ["*.example.com"]) and host_allowed("x.io", ["X.io"])
    with pytest.raises(DescriptorError, match="not in the allowed hosts"):
        get("http://evil.test/x", allowed_hosts=["github.com"])
    assert get(server + "/file", allowed_hosts=["127.0.0.1"])[0]


def test_redirect_to_metadata_refused_at_hop(server):
    with pytest.raises(DescriptorError, match="169.254.169.254 is a link-local address"):
        get(server + "/metadata")


def test_redirect_to_disallowed_host_refused(server):
    with pytest.raises(DescriptorError, match="not in the allowed hosts"):
        get(server + "/metadata", allowed_hosts=["127.0.0.1"])


def test_redirect_loop(server):
    with pytest.raises(DescriptorError, match="redirect loop"):
        get(server + "/loop-a")


def test_redirect_chain_within_and_over_limit(server):
    body, final = get(server + "/chain/3")
    assert body == b"kind: Component\n" and final == server + "/file"
    with pytest.raises(DescriptorError, match="too many redirects"):
        get(server + "/chain/6", max_redirects=5)


def test_oversized_bodies(server):
    with pytest.raises(DescriptorError, match="response larger than 2 MiB"):
        get(server + "/big")
    with pytest.raises(DescriptorError, match="response larger than 2 MiB"):
        get(server + "/big-unannounced")


@pytest.mark.parametrize("path", ["/slow", "/slow-headers"])
def test_slow_endless_response_cut_at_deadline(server, path):
    start = time.monotonic()
    with pytest.raises(DescriptorError, match="timed out after 1 s"):
        get(server + path, timeout=1.0)
    assert time.monotonic() - start < 2.5


def test_http_error_status(server):
    with pytest.raises(DescriptorError, match="HTTP 404"):
        get(server + "/404")


def test_connection_is_pinned_to_the_checked_address(server, monkeypatch):
    """The name is resolved once; the connection goes to that address with the original Host."""
    port = server.rsplit(":", 1)[1]
    calls = []

    def fake_resolve(host, _port):
        calls.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(fetch, "_resolve", fake_resolve)
    body, _ = get(f"http://catalog.example.test:{port}/host")
    assert body == f"catalog.example.test:{port}".encode() and calls == ["catalog.example.test"]


def test_any_bad_dns_answer_refuses(monkeypatch):
    monkeypatch.setattr(fetch, "_resolve", lambda host, port: ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(DescriptorError, match=r"10.0.0.5 is a private address \(rebind.example resolves"):
        get("http://rebind.example/", allow_private=False)
