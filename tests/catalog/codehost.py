"""A local fake code host: the few REST endpoints of GitHub, GitLab, Bitbucket Cloud and Azure DevOps
that catalog.integrations and catalog.discovery call, shaped as their published API docs describe.
The real hosts cannot be reached from here; this server stands in for them in the tests.

* GitHub REST: `GET /api/v3/orgs/{org}/repos?per_page=&page=` (a JSON list of repositories with
  `name`, `full_name`, `archived`, `default_branch`; `Link: <…>; rel="next"`, rel="last"; the
  `X-RateLimit-Limit/Remaining/Reset` headers), `GET /api/v3/repos/{owner}/{repo}/contents/{path}?ref=`
  (with `Accept: application/vnd.github.raw+json`: the file's bytes; 404 `{"message": "Not Found"}`),
  and the raw host `GET /raw/{owner}/{repo}/{ref}/{path}`.
* GitLab REST v4: `GET /api/v4/groups/{id}/projects?include_subgroups=&per_page=&page=` (projects with
  `path_with_namespace`, `archived`, `default_branch`; `X-Next-Page`, `X-Page`, `X-Total-Pages`) and
  `GET /api/v4/projects/{id}/repository/files/{file_path}/raw?ref=` (ids and file paths URL-encoded).
* Bitbucket Cloud 2.0: `GET /2.0/repositories/{workspace}/{repo}/src/{ref}/{path}`.
* Azure DevOps Git: `GET /{org}/{project}/_apis/git/repositories/{repo}/items?path=&versionDescriptor.version=`.

Every request is recorded with its headers (`server.requests`). A token set on the server is required
(401 otherwise). `redirects` maps a path to a Location; `rate_limits` lets a test make the host answer
as when a rate limit is reached.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Recorded:
    path: str
    headers: dict
    at: float = 0.0  # time.time() when it arrived


@dataclass
class CodeHost:
    """State the handler serves; tests change it between refreshes."""

    token: str = ""
    repos: dict[str, list[dict]] = field(default_factory=dict)  # org or group → repositories
    files: dict[tuple[str, str, str], bytes] = field(default_factory=dict)  # (repo, ref, path) → content
    redirects: dict[str, str] = field(default_factory=dict)
    # Called with the request path before it is served: (status, headers) to answer instead, or None.
    rate_limit: object = None
    requests: list[Recorded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base_url: str = ""

    def add_repo(self, org: str, name: str, *, archived=False, branch="main", files=None, gitlab=False):
        full = f"{org}/{name}"
        repo = {"id": len(self.repos.get(org, [])) + 1, "name": name, "archived": archived, "default_branch": branch,
                ("path_with_namespace" if gitlab else "full_name"): full,
                ("last_activity_at" if gitlab else "pushed_at"): "2026-01-01T00:00:00Z"}
        self.repos.setdefault(org, []).append(repo)
        for path, content in (files or {}).items():
            self.files[(full, branch, path)] = content.encode() if isinstance(content, str) else content
        return repo

    def push(self, full: str, path: str, content: str | bytes | None, *, branch: str = "main") -> None:
        """Change (None: delete) a file as a push does: the repository's last push time moves on."""
        if content is None:
            self.files.pop((full, branch, path), None)
        else:
            self.files[(full, branch, path)] = content.encode() if isinstance(content, str) else content
        self._pushes = getattr(self, "_pushes", 0) + 1
        stamp = f"2026-02-01T00:00:{self._pushes:02d}Z" if self._pushes < 60 else f"2026-02-02T{self._pushes}"
        for repos in self.repos.values():
            for repo in repos:
                if full in (repo.get("full_name"), repo.get("path_with_namespace")):
                    repo["pushed_at" if "full_name" in repo else "last_activity_at"] = stamp

    def seen(self, prefix: str = "") -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(prefix)]


def _page(items: list, query: dict) -> tuple[list, int, int]:
    per_page = min(100, int((query.get("per_page") or ["30"])[0]))
    page = max(1, int((query.get("page") or ["1"])[0]))
    last = max(1, -(-len(items) // per_page))
    return items[(page - 1) * per_page: page * per_page], page, last


class Handler(BaseHTTPRequestHandler):
    host: CodeHost  # set per server
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _json(self, status: int, value, headers: dict | None = None):
        self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    def do_GET(self):  # noqa: C901 - one routing table for four hosts' endpoints
        host = self.host
        parts = urlsplit(self.path)
        with host.lock:
            host.requests.append(Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, time.time()))
        if parts.path in host.redirects:
            return self._send(302, headers={"Location": host.redirects[parts.path]})
        if callable(host.rate_limit) and (limited := host.rate_limit(self.path)) is not None:
            status, headers = limited
            return self._json(status, {"message": "API rate limit exceeded"}, headers)
        if host.token and not self._authorised():
            return self._json(401, {"message": "Bad credentials"})
        query = parse_qs(parts.query)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        raw_segments = [s for s in parts.path.split("/") if s]
        if segments[:2] == ["api", "v3"] and segments[2:3] == ["orgs"] and segments[4:] == ["repos"]:
            return self._github_list(segments[3], query)
        if segments[:3] == ["api", "v3", "repos"] and len(segments) >= 7 and segments[5] == "contents":
            repo = f"{segments[3]}/{segments[4]}"
            return self._file(repo, query.get("ref", ["main"])[0], "/".join(segments[6:]))
        if segments[:1] == ["raw"] and len(segments) >= 5:
            return self._file(f"{segments[1]}/{segments[2]}", segments[3], "/".join(segments[4:]))
        if segments[:3] == ["api", "v4", "groups"] and len(segments) == 5 and segments[4] == "projects":
            return self._gitlab_list(segments[3], query)
        if (segments[:3] == ["api", "v4", "projects"] and len(raw_segments) == 8
                and raw_segments[4:6] == ["repository", "files"] and raw_segments[7] == "raw"):
            return self._file(unquote(raw_segments[3]), query.get("ref", ["main"])[0], unquote(raw_segments[6]))
        if segments[:2] == ["2.0", "repositories"] and len(segments) >= 7 and segments[4] == "src":
            return self._file(f"{segments[2]}/{segments[3]}", segments[5], "/".join(segments[6:]))
        if len(segments) == 7 and segments[2:5] == ["_apis", "git", "repositories"] and segments[6] == "items":
            repo = f"{segments[0]}/{segments[1]}/{segments[5]}"
            path = query.get("path", [""])[0].lstrip("/")
            return self._file(repo, query.get("versionDescriptor.version", ["main"])[0], path)
        return self._json(404, {"message": "Not Found"})

    def _authorised(self) -> bool:
        import base64

        given = self.headers.get("Authorization", "")
        token = self.host.token
        return given in (f"Bearer {token}", "Basic " + base64.b64encode(f":{token}".encode()).decode())

    def _file(self, repo: str, ref: str, path: str):
        content = self.host.files.get((repo, ref, path))
        if content is None:
            return self._json(404, {"message": "Not Found"})
        return self._send(200, content, {"Content-Type": "application/octet-stream"})

    def _github_list(self, org: str, query: dict):
        if org not in self.host.repos:
            return self._json(404, {"message": "Not Found"})
        items, page, last = _page(self.host.repos[org], query)
        base = f"{self.host.base_url}/api/v3/orgs/{org}/repos?per_page={len(items) or 100}"
        links = [f'<{base}&page={page + 1}>; rel="next"', f'<{base}&page={last}>; rel="last"'] if page < last else []
        headers = {"X-RateLimit-Limit": "5000", "X-RateLimit-Remaining": "4000",
                   "X-RateLimit-Reset": str(int(time.time()) + 3600)}
        if links:
            headers["Link"] = ", ".join(links)
        return self._json(200, items, headers)

    def _gitlab_list(self, group: str, query: dict):
        group = unquote(group)
        matching = [p for org, repos in self.host.repos.items() if org == group or org.startswith(group + "/")
                    for p in repos]
        if not matching and group not in self.host.repos:
            return self._json(404, {"message": "404 Group Not Found"})
        if (query.get("archived") or [""])[0] == "false":
            matching = [p for p in matching if not p["archived"]]
        items, page, last = _page(matching, query)
        headers = {"X-Page": str(page), "X-Total-Pages": str(last), "X-Per-Page": str(len(items)),
                   "X-Next-Page": str(page + 1) if page < last else ""}
        return self._json(200, items, headers)


def start(host: CodeHost, bind: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, int]:
    handler = type("BoundHandler", (Handler,), {"host": host})
    server = ThreadingHTTPServer((bind, 0), handler)
    server.daemon_threads = True
    server.request_queue_size = 64
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]
