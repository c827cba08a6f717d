"""SSRF-safe HTTP(S) fetching of remote descriptors and placeholder targets.

Owns: fetch_url. Every hop (the first URL and each redirect) is checked: scheme, host allow-list,
DNS answers (all of them) against forbidden address ranges; then the connection goes to the very
address that was checked (pinned: no second DNS lookup a rebinding attacker could answer), with the
original Host header and TLS SNI/certificate name. Size and total time are capped while streaming.

Link-local (cloud metadata at 169.254.169.254), multicast, unspecified and reserved addresses are
always refused; `allow_private=True` only relaxes loopback and private/non-global ranges (local
development, tests, on-premises Git servers).
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from portal.core.numbers import digits

from .errors import DescriptorError
from .loader import human_bytes

REDIRECTS = {301, 302, 303, 307, 308}
_CHUNK = 64 * 1024


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in ipaddress.IPv6Network("64:ff9b::/96"):  # NAT64 well-known prefix
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in ipaddress.IPv6Network("::/96") and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_problem(address: str, *, allow_private: bool) -> str | None:
    """Why connecting to `address` is refused, or None."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and (v4 := _embedded_v4(ip)) is not None:
        inner = address_problem(str(v4), allow_private=allow_private)
        return f"{inner} (embedded in {ip})" if inner else None
    for attr, label in (
        ("is_unspecified", "an unspecified"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_reserved", "a reserved"),
    ):
        if getattr(ip, attr):
            return f"{ip} is {label} address"
    if allow_private:
        return None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def host_allowed(host: str, allowed_hosts: list[str] | None) -> bool:
    if not allowed_hosts:
        return True
    for pattern in allowed_hosts:
        pattern = pattern.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
                return True
        elif host == pattern:
            return True
    return False


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(info[4][0] for info in infos))


def _check_hop(url: str, allowed_hosts, allow_private: bool) -> tuple[object, str, int, str]:
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # "http://[::1" and the like, also from a redirect's Location
        raise DescriptorError(f"refused: not a valid URL ({exc})", url) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DescriptorError(
            f"refused: only http and https URLs can be fetched, not {scheme or 'no'} scheme", url
        )
    if parts.username is not None or parts.password is not None:
        raise DescriptorError("refused: URLs with credentials are not allowed", url)
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise DescriptorError("refused: URL has no host", url)
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise DescriptorError("refused: invalid port", url) from None
    if not host_allowed(host, allowed_hosts):
        raise DescriptorError(f"refused: host {host} is not in the allowed hosts", url)
    try:
        addresses = _resolve(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        raise DescriptorError(f"cannot resolve {host}: {exc}", url) from None
    for address in addresses:  # every answer must be acceptable, not just the first
        if problem := address_problem(address, allow_private=allow_private):
            via = "" if address == host else f" ({host} resolves to {address})"
            raise DescriptorError(f"refused: {problem}{via}", url)
    return parts, host, port, addresses[0]


def check_url(url: str, *, allowed_hosts: list[str] | None, allow_private: bool) -> None:
    """Raise DescriptorError when `url` would be refused whatever its server answers: scheme,
    credentials, host allow-list, an address that does not resolve or is not public."""
    _check_hop(url, allowed_hosts, allow_private)


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self):
        raw = socket.create_connection((self._address, self.port), self.timeout)
        # SNI and certificate verification use the original host name, not the pinned address.
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)


@dataclass(frozen=True)
class Credentials:
    """Headers that authenticate to one origin (scheme, host, port) only: a code-host token.

    `fetch` sends them while a hop's origin is this one and drops them for good at the first hop
    that leaves it (a redirect to a CDN, another host, another port or plain http), so a token can
    never reach a server it was not issued for. The repr names the origin, never the headers."""

    origin: tuple[str, str, int]
    headers: dict = field(repr=False)

    @classmethod
    def for_url(cls, url: str, headers: dict) -> Credentials:
        parts = urlsplit(url)
        return cls(_origin(parts), dict(headers))


def _origin(parts) -> tuple[str, str, int]:
    scheme = parts.scheme.lower()
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").rstrip(".").lower(), port


@dataclass
class Fetched:
    """A final (non-redirect) answer: its status, headers (lower-cased names) and body."""

    status: int
    headers: dict
    body: bytes
    url: str


class HTTPStatusError(DescriptorError):
    """A server answered, with a status other than 2xx; `status` and `headers` say how (rate limits)."""

    def __init__(self, message: str, source: str = "", status: int = 0, headers: dict | None = None):
        super().__init__(message, source)
        self.status = status
        self.headers = headers or {}

    def __reduce__(self):
        return (type(self), (self.message, self.source, self.status, self.headers))


def fetch_url(
    url: str,
    *,
    allowed_hosts: list[str] | None,
    allow_private: bool,
    max_bytes: int,
    timeout: float,
    max_redirects: int = 5,
    headers: dict | None = None,
    credentials: Credentials | None = None,
) -> tuple[bytes, str]:
    """GET `url` and return (body, final_url); raise DescriptorError on any refusal or failure
    (HTTPStatusError when the server answered with a status other than 2xx)."""
    answer = fetch(url, allowed_hosts=allowed_hosts, allow_private=allow_private, max_bytes=max_bytes,
                   timeout=timeout, max_redirects=max_redirects, headers=headers, credentials=credentials)
    if not 200 <= answer.status < 300:
        raise HTTPStatusError(f"HTTP {answer.status} from {answer.url}", answer.url, answer.status, answer.headers)
    return answer.body, answer.url


def fetch(
    url: str,
    *,
    allowed_hosts: list[str] | None,
    allow_private: bool,
    max_bytes: int,
    timeout: float,
    max_redirects: int = 5,
    headers: dict | None = None,
    credentials: Credentials | None = None,
) -> Fetched:
    """GET `url`, following redirects hop by hop (each checked), and return the final answer whatever
    its status. `headers` go to every hop; `credentials` only to hops on their origin."""
    deadline = time.monotonic() + timeout
    visited = {url}
    hops = 0
    while True:
        parts, host, port, address = _check_hop(url, allowed_hosts, allow_private)
        if credentials is not None and _origin(parts) != credentials.origin:
            credentials = None  # left the token's origin: never sent again, not even on a way back
        sent = {**(headers or {}), **(credentials.headers if credentials else {})}
        status, location, body, answer_headers = _get(parts, host, port, address, url, deadline, timeout,
                                                      max_bytes, sent)
        if status in REDIRECTS:
            if not location:
                raise DescriptorError(f"HTTP {status} redirect without a Location header", url)
            hops += 1
            if hops > max_redirects:
                raise DescriptorError(f"too many redirects (more than {max_redirects})", url)
            target = urljoin(url, location.strip())
            if target in visited:
                raise DescriptorError(f"redirect loop: {target} was already visited", url)
            visited.add(target)
            url = target
            continue
        return Fetched(status, answer_headers, body, url)


def _get(parts, host, port, address, url, deadline, timeout, max_bytes,
         extra_headers: dict) -> tuple[int, str | None, bytes, dict]:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise DescriptorError(f"timed out after {timeout:g} s", url)
    cls = _PinnedHTTPS if parts.scheme.lower() == "https" else _PinnedHTTP
    conn = cls(host, port, address, remaining)
    # Per-read socket timeouts alone let a server dribble bytes forever; this watchdog enforces
    # the overall deadline by shutting the socket down, which unblocks any pending read.
    expired = threading.Event()

    def expire():
        expired.set()
        if conn.sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing to interrupt
                conn.sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(remaining, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        conn.request("GET", path, headers={"User-Agent": "plinth-catalog", **extra_headers,
                                           "Accept-Encoding": "identity"})
        resp = conn.getresponse()
        answer_headers = {name.lower(): value for name, value in resp.getheaders()}
        if resp.status in REDIRECTS:
            return resp.status, resp.getheader("Location"), b"", answer_headers
        length = resp.getheader("Content-Length")
        if length and digits(length) and int(length) > max_bytes:
            raise DescriptorError(f"response larger than {human_bytes(max_bytes)}", url)
        chunks, total = [], 0
        while True:
            if time.monotonic() >= deadline:
                raise DescriptorError(f"timed out after {timeout:g} s", url)
            chunk = resp.read1(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > max_bytes:
                raise DescriptorError(f"response larger than {human_bytes(max_bytes)}", url)
            chunks.append(chunk)
        if expired.is_set():  # the watchdog cut the stream: what we have is truncated
            raise DescriptorError(f"timed out after {timeout:g} s", url)
        return resp.status, None, b"".join(chunks), answer_headers
    except DescriptorError:
        raise
    except (OSError, http.client.HTTPException) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise DescriptorError(f"timed out after {timeout:g} s", url) from None
        raise DescriptorError(f"fetch failed: {exc}", url) from None
    finally:
        watchdog.cancel()
        conn.close()
