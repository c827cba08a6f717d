"""Code-host integrations: GitHub, GitLab, Bitbucket Cloud and Azure DevOps, Backstage's way.

Owns: the `PLINTH_INTEGRATIONS` setting (one entry per host: type, host, token, optional API and raw
base URLs for enterprise servers), turning a file URL as people copy it from the browser (a "blob"
URL) into the host's raw-content or REST call with that host's token, joining relative `$text`
targets and Location targets to sibling file URLs of the same repository, and a rate-limit-aware
client (`Client`) for everything a read sends to a code host. Discovery (listing an organisation's
repositories) is in `catalog.discovery`.

Tokens go only to the integration's own API/raw origin: `descriptors.fetch.Credentials` drops them at
the first redirect that leaves it. Tokens are never logged and never part of an error message.
"""

from __future__ import annotations

import base64
import json
import math
import posixpath
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs, quote, unquote, urlencode, urljoin, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .descriptors.errors import DescriptorError
from .descriptors.fetch import Credentials, Fetched, fetch

TYPES = ("github", "gitlab", "bitbucket", "azure")
TITLES = {"github": "GitHub", "gitlab": "GitLab", "bitbucket": "Bitbucket", "azure": "Azure DevOps"}
# The public hosts work without configuration (no token), as in Backstage.
PUBLIC = {"github.com": "github", "gitlab.com": "gitlab", "bitbucket.org": "bitbucket", "dev.azure.com": "azure"}
LISTING_MAX_BYTES = 16 * 1024 * 1024  # a page of 100 GitHub repositories is ~0.6 MB of JSON


@dataclass(frozen=True)
class Integration:
    type: str
    host: str  # the web host people copy URLs from, with ":port" when not the default
    token: str = field(default="", repr=False)
    username: str = ""  # Bitbucket: with a token (app password) → basic authentication
    api_base_url: str = ""
    raw_base_url: str = ""

    @property
    def title(self) -> str:
        return TITLES[self.type]

    def auth_headers(self) -> dict:
        if not self.token:
            return {}
        if self.type == "azure":  # a personal access token as the password of basic authentication
            return {"Authorization": "Basic " + base64.b64encode(f":{self.token}".encode()).decode()}
        if self.type == "bitbucket" and self.username:
            pair = f"{self.username}:{self.token}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {"Authorization": f"Bearer {self.token}"}

    def credentials(self, request_url: str) -> Credentials | None:
        """The token for `request_url` — only when it is on this integration's API or raw origin."""
        headers = self.auth_headers()
        if not headers:
            return None
        origin = Credentials.for_url(request_url, headers)
        ours = {Credentials.for_url(base, {}).origin for base in (self.api_base_url, self.raw_base_url) if base}
        return origin if origin.origin in ours else None


def _defaults(kind: str, host: str, scheme: str = "https") -> tuple[str, str]:
    """(api_base_url, raw_base_url) of a host of this type, cloud or self-hosted."""
    if kind == "github":
        if host == "github.com":
            return "https://api.github.com", "https://raw.githubusercontent.com"
        return f"{scheme}://{host}/api/v3", f"{scheme}://{host}/raw"
    if kind == "gitlab":
        return f"{scheme}://{host}/api/v4", ""
    if kind == "bitbucket":
        return ("https://api.bitbucket.org/2.0" if host == "bitbucket.org" else f"{scheme}://{host}/2.0"), ""
    return f"{scheme}://{host}", ""


def parse(raw) -> list[Integration]:
    """`PLINTH_INTEGRATIONS` (JSON text, or the list itself) → integrations; ImproperlyConfigured naming
    the entry and the problem (never the token)."""
    if raw in (None, "", []):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ImproperlyConfigured(f"PLINTH_INTEGRATIONS is not valid JSON: {exc}") from None
    if not isinstance(raw, list):
        raise ImproperlyConfigured("PLINTH_INTEGRATIONS must be a JSON list of objects "
                                   '({"type": "github", "host": "github.com", "token": "…"}).')
    found, hosts = [], set()
    for index, item in enumerate(raw):
        where = f"PLINTH_INTEGRATIONS[{index}]"
        if not isinstance(item, dict):
            raise ImproperlyConfigured(f"{where} must be an object, not {type(item).__name__}.")
        unknown = set(item) - {"type", "host", "token", "username", "api_base_url", "raw_base_url"}
        if unknown:
            raise ImproperlyConfigured(f"{where} has unknown keys: {', '.join(sorted(unknown))}.")
        kind, host = item.get("type"), item.get("host")
        if kind not in TYPES:
            raise ImproperlyConfigured(f"{where}: type must be one of {', '.join(TYPES)}, not {kind!r}.")
        if not isinstance(host, str) or not host or "/" in host or host != host.strip():
            raise ImproperlyConfigured(f"{where}: host must be a host name such as github.com (no scheme or path).")
        host = host.lower()
        if host in hosts:
            raise ImproperlyConfigured(f"{where}: host {host} is configured twice.")
        hosts.add(host)
        for key in ("token", "username", "api_base_url", "raw_base_url"):
            if key in item and not isinstance(item[key], str):
                raise ImproperlyConfigured(f"{where}: {key} must be a string.")
        api, raw_base = _defaults(kind, host)
        for key in ("api_base_url", "raw_base_url"):
            value = item.get(key)
            if value and urlsplit(value).scheme not in ("http", "https"):
                raise ImproperlyConfigured(f"{where}: {key} must be an http(s) URL.")
        found.append(Integration(
            type=kind, host=host, token=item.get("token", ""), username=item.get("username", ""),
            api_base_url=(item.get("api_base_url") or api).rstrip("/"),
            raw_base_url=(item.get("raw_base_url") or raw_base).rstrip("/"),
        ))
    return found


_parsed: tuple[object, dict[str, Integration]] | None = None


def configured() -> dict[str, Integration]:
    """Host → integration: the configured ones, plus the public hosts without a token."""
    global _parsed
    raw = getattr(settings, "PLINTH_INTEGRATIONS", "")
    key = raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
    if _parsed is None or _parsed[0] != key:
        hosts = {host: Integration(kind, host, api_base_url=_defaults(kind, host)[0],
                                   raw_base_url=_defaults(kind, host)[1]) for host, kind in PUBLIC.items()}
        hosts.update({i.host: i for i in parse(raw)})
        _parsed = (key, hosts)
    return _parsed[1]


def _web_host(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # "http://[::1", a port out of range: not a URL any integration serves
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    host = (parts.hostname or "").rstrip(".").lower()
    return f"{host}:{port}" if port else host


def for_url(url: str) -> Integration | None:
    """The integration of the host `url` is on, or None (a plain URL, fetched without a token)."""
    host = _web_host(url)
    return configured().get(host) if host else None


# -- file URLs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FileRef:
    """One file of one repository at one ref, on an integration's host."""

    integration: Integration
    repo: str  # "owner/name"; GitLab: the project's full path; Azure: "org/project/repo"
    ref: str
    path: str  # inside the repository, no leading slash

    def blob_url(self) -> str:
        i, web = self.integration, f"{_scheme(self.integration)}://{self.integration.host}"
        if i.type == "github":
            return f"{web}/{self.repo}/blob/{self.ref}/{self.path}"
        if i.type == "gitlab":
            return f"{web}/{self.repo}/-/blob/{self.ref}/{self.path}"
        if i.type == "bitbucket":
            return f"{web}/{self.repo}/src/{self.ref}/{self.path}"
        org, project, repo = self.repo.split("/", 2)
        return f"{web}/{org}/{project}/_git/{repo}?" + urlencode({"path": "/" + self.path, "version": "GB" + self.ref},
                                                                safe="/")

    def request(self) -> tuple[str, dict, Credentials | None]:
        """(URL to GET, headers, credentials) for the file's raw content, per the host's REST docs."""
        i = self.integration
        quoted_path, quoted_ref = quote(self.path), quote(self.ref, safe="")
        headers: dict = {}
        if i.type == "github":
            if i.token:  # REST "Get repository content" with the raw media type
                owner, name = self.repo.split("/", 1)
                url = f"{i.api_base_url}/repos/{quote(owner)}/{quote(name)}/contents/{quoted_path}?ref={quoted_ref}"
                headers = {"Accept": "application/vnd.github.raw+json", "X-GitHub-Api-Version": "2022-11-28"}
            else:  # public: the raw host, which does not count against the API's rate limit
                url = f"{i.raw_base_url}/{quote(self.repo)}/{quote(self.ref)}/{quoted_path}"
        elif i.type == "gitlab":  # Repository files API: "Get raw file from repository"
            url = (f"{i.api_base_url}/projects/{quote(self.repo, safe='')}/repository/files/"
                   f"{quote(self.path, safe='')}/raw?ref={quoted_ref}")
        elif i.type == "bitbucket":  # "Get file or directory contents"
            url = f"{i.api_base_url}/repositories/{quote(self.repo)}/src/{quoted_ref}/{quoted_path}"
        else:  # Azure DevOps Git "Items - Get"
            org, project, repo = self.repo.split("/", 2)
            query = urlencode({"path": "/" + self.path, "versionDescriptor.version": self.ref,
                               "versionDescriptor.versionType": "branch", "api-version": "7.0"})
            url = f"{i.api_base_url}/{quote(org)}/{quote(project)}/_apis/git/repositories/{quote(repo)}/items?{query}"
            headers = {"Accept": "application/octet-stream"}
        return url, headers, i.credentials(url)

    def sibling(self, target: str) -> FileRef:
        """`target` (relative to this file) in the same repository and ref; ValueError when it leaves it."""
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(self.path), target))
        if joined.startswith("../") or joined in ("..", ".", "") or target.startswith("/"):
            raise ValueError(f"{target!r} leaves the repository {self.repo}")
        return FileRef(self.integration, self.repo, self.ref, joined)


def _scheme(integration: Integration) -> str:
    # The web host's scheme is that of its API (a self-hosted test server may be plain http).
    return urlsplit(integration.api_base_url).scheme or "https"


EXPECTED = {
    "github": "https://HOST/OWNER/REPO/blob/REF/PATH",
    "gitlab": "https://HOST/GROUP/PROJECT/-/blob/REF/PATH",
    "bitbucket": "https://HOST/WORKSPACE/REPO/src/REF/PATH",
    "azure": "https://HOST/ORG/PROJECT/_git/REPO?path=/PATH&version=GBBRANCH",
}


def parse_file_url(url: str) -> FileRef | None:
    """The file a code-host URL names; None for a host without an integration. A URL of such a host
    that names no file raises DescriptorError naming the URL and the expected shape."""
    integration = for_url(url)
    if integration is None:
        return None
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    ref = None if "//" in parts.path else _parse(integration, segments, parse_qs(parts.query))
    if ref is None:
        raise DescriptorError(f"{url} is not a file URL of {integration.title} ({integration.host}); "
                              f"expected {EXPECTED[integration.type]}", url, field="target")
    return ref


def _parse(i: Integration, segments: list[str], query: dict) -> FileRef | None:
    segments = [unquote(s) for s in segments]
    if not all(plain_segment(s) for s in segments):
        return None
    if i.type == "github":
        if len(segments) >= 5 and segments[2] in ("blob", "raw") and segments[3]:
            return FileRef(i, f"{segments[0]}/{segments[1]}", segments[3], "/".join(segments[4:]))
        return None
    if i.type == "gitlab":
        if "-" in segments:
            at = segments.index("-")
            rest = segments[at + 1:]
            if at >= 2 and len(rest) >= 3 and rest[0] in ("blob", "raw"):
                return FileRef(i, "/".join(segments[:at]), rest[1], "/".join(rest[2:]))
        return None
    if i.type == "bitbucket":
        if len(segments) >= 5 and segments[2] in ("src", "raw"):
            return FileRef(i, f"{segments[0]}/{segments[1]}", segments[3], "/".join(segments[4:]))
        return None
    if len(segments) == 4 and segments[2] == "_git":
        path = (query.get("path") or [""])[0].lstrip("/")
        version = (query.get("version") or ["GBmain"])[0]
        if path and all(plain_segment(s) for s in path.split("/")) and version.startswith("GB") and len(version) > 2:
            return FileRef(i, f"{segments[0]}/{segments[1]}/{segments[3]}", version[2:], path)
    return None


def plain_segment(segment: str) -> bool:
    """A path segment that stays one segment once decoded: no "..", no encoded slash — the API call
    built from it (with the token) must name this file and no other endpoint."""
    return segment not in ("", ".", "..") and not any(c in segment for c in "/\\\x00?#")


def join(base: str, target: str) -> str:
    """`target` relative to the descriptor at `base`: a sibling file URL of the same repository for a
    code-host file URL (ValueError when it would leave the repository), urljoin otherwise."""
    if urlsplit(target).scheme.lower() in ("http", "https"):
        return target
    try:
        ref = parse_file_url(base)
    except DescriptorError:
        ref = None
    if ref is None:
        return urljoin(base, target)
    return ref.sibling(target).blob_url()


# -- the client ------------------------------------------------------------------------------------

class RateLimited(DescriptorError):
    """A code host's rate limit that resets later than we may wait: the whole read stops, unstored."""


class Client:
    """GETs to code hosts for one read: the catalog's fetch policy (SSRF checks, caps, deadline) plus the
    integration's token and the host's rate limits. Thread-safe: discovery reads files in threads.

    Rate limits (GitHub: `X-RateLimit-Remaining: 0` with `X-RateLimit-Reset`; any host: 403/429 with
    `Retry-After`): a limit that resets within `PLINTH_INTEGRATIONS_RATE_LIMIT_WAIT` seconds is waited
    for (and the request sent again); a later one raises RateLimited saying when it resets."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._blocked_until: dict[str, float] = {}  # integration host → monotonic time

    def get(self, url: str, *, integration: Integration, headers: dict | None = None,
            credentials: Credentials | None = None, max_bytes: int | None = None) -> Fetched:
        for _attempt in range(3):
            self._wait(integration, url)
            answer = fetch(
                url, allowed_hosts=settings.PLINTH_CATALOG_ALLOWED_HOSTS or None,
                allow_private=settings.PLINTH_CATALOG_ALLOW_PRIVATE_URLS,
                max_bytes=max_bytes or settings.PLINTH_CATALOG_MAX_BYTES,
                timeout=settings.PLINTH_CATALOG_FETCH_TIMEOUT, headers=headers, credentials=credentials,
            )
            wait = _rate_limit_wait(answer)
            if wait is None:
                return answer
            with self._lock:
                self._blocked_until[integration.host] = time.monotonic() + wait
            if answer.status in (403, 429):
                continue  # waited for (or refused) by _wait, then sent again
            return answer  # the last request of the window: the next one waits
        raise RateLimited(f"{integration.title} ({integration.host}) kept answering with its rate limit; "
                          "nothing was changed, the next refresh tries again.", url)

    def _wait(self, integration: Integration, url: str) -> None:
        with self._lock:
            until = self._blocked_until.get(integration.host, 0.0)
        wait = until - time.monotonic()
        if wait <= 0:
            return
        allowed = settings.PLINTH_INTEGRATIONS_RATE_LIMIT_WAIT
        if wait > allowed:
            resets = time.strftime("%H:%M:%S UTC", time.gmtime(time.time() + wait))
            raise RateLimited(
                f"{integration.title} ({integration.host}) rate limit reached; it resets at {resets} "
                f"(in {wait:.0f} s, more than the {allowed} s we wait). Nothing was changed: the stored "
                "entities stay, and the next refresh tries again.", url)
        time.sleep(wait)


DEFAULT_RATE_LIMIT_WAIT = 60.0  # a host limited without saying (sensibly) until when
MAX_RATE_LIMIT_WAIT = 24 * 3600.0  # no code host's window is longer: a header saying so is not believed


def _rate_limit_wait(answer: Fetched) -> float | None:
    """Seconds until the host accepts requests again, when this answer says it is (about to be) limited.
    A header's number is the host's to choose: one that is not a number, not finite (`inf`, `1e400`) or
    negative reads as the default wait, and none is longer than a day (`time.gmtime` of year 10^300
    overflows)."""
    h = answer.headers
    limited = answer.status in (403, 429)
    if limited and (retry := h.get("retry-after")):
        try:
            seconds = float(retry)
        except ValueError:
            try:
                return _capped(max(0.0, parsedate_to_datetime(retry).timestamp() - time.time()))
            except (TypeError, ValueError, OverflowError):
                return DEFAULT_RATE_LIMIT_WAIT
        return _capped(seconds)
    if h.get("x-ratelimit-remaining") == "0" and (limited or 200 <= answer.status < 300):
        try:
            resets = float(h.get("x-ratelimit-reset", ""))
        except ValueError:
            return DEFAULT_RATE_LIMIT_WAIT
        if not math.isfinite(resets):
            return DEFAULT_RATE_LIMIT_WAIT
        return _capped(max(0.0, resets - time.time())) + 1.0  # a reset already past: one second
    if answer.status == 429:
        return DEFAULT_RATE_LIMIT_WAIT  # limited without saying until when
    return None


def _capped(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        return DEFAULT_RATE_LIMIT_WAIT
    return min(seconds, MAX_RATE_LIMIT_WAIT)


def read_file(client: Client, ref: FileRef, *, max_bytes: int | None = None) -> bytes:
    """The raw content of a code-host file; HTTPStatusError (404 included) when the host answers so."""
    from .descriptors.fetch import HTTPStatusError

    url, headers, credentials = ref.request()
    answer = client.get(url, headers=headers, credentials=credentials, integration=ref.integration,
                        max_bytes=max_bytes)
    if not 200 <= answer.status < 300:
        raise HTTPStatusError(f"HTTP {answer.status} from {answer.url} (for {ref.blob_url()})", answer.url,
                              answer.status, answer.headers)
    return answer.body
