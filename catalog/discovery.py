"""Discovery locations: every repository of a GitHub organisation or a GitLab group, scanned for its
descriptor file on each refresh.

Owns: the targets `github-discovery:https://github.com/ORG[/REPO-GLOB/blob/REF/PATH]` and
`gitlab-discovery:https://gitlab.com/GROUP[/SUBGROUP…][/-/blob/REF/PATH]` (REF `*` or left out: each
repository's default branch; PATH by default `catalog-info.yaml`), and listing the repositories page by
page (GitHub `Link: rel="next"`; GitLab `Link` or `X-Next-Page`), archived ones skipped, through
`integrations.Client` (token, rate limits). The Reader (catalog.ingest.reader) then reads each file URL
like a URL location's; a 404 there means "this repository has no descriptor".
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode, urlsplit

from portal.core.numbers import digits

from .descriptors.errors import DescriptorError
from .integrations import LISTING_MAX_BYTES, TITLES, Client, FileRef, Integration, for_url, plain_segment

PREFIXES = {"github-discovery": "github", "gitlab-discovery": "gitlab"}
DEFAULT_PATH = "catalog-info.yaml"
PER_PAGE = 100
MAX_REPOSITORIES = 20_000  # the Reader's cap on sources
_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?([^";]+)"?')


class DiscoveryFailed(DescriptorError):
    """The repositories could not be listed: the read stops, nothing is stored."""


def location_type(target: str) -> str | None:
    """'github-discovery' / 'gitlab-discovery' for a discovery target, else None."""
    prefix = target.strip().split(":", 1)[0].lower()
    return prefix if prefix in PREFIXES and ":" in target else None


@dataclass(frozen=True)
class Scope:
    integration: Integration
    owner: str  # GitHub organisation; GitLab group path
    repo_glob: str  # GitHub: which repositories ("*": all)
    ref: str | None  # None: each repository's default branch
    path: str

    @property
    def listing_url(self) -> str:
        i = self.integration
        if i.type == "github":
            return f"{i.api_base_url}/orgs/{quote(self.owner)}/repos?" + urlencode(
                {"type": "all", "sort": "full_name", "per_page": PER_PAGE})
        return f"{i.api_base_url}/groups/{quote(self.owner, safe='')}/projects?" + urlencode(
            {"include_subgroups": "true", "with_shared": "false", "archived": "false", "order_by": "id",
             "sort": "asc", "per_page": PER_PAGE})


def parse_target(target: str) -> Scope:
    """The scope of a discovery target; DescriptorError naming the target and the expected shape."""
    kind = location_type(target)
    url = target.strip().split(":", 1)[1].strip() if kind else ""
    expected = ("github-discovery:https://github.com/ORG (or …/ORG/*/blob/main/catalog-info.yaml)"
                if kind == "github-discovery" else
                "gitlab-discovery:https://gitlab.com/GROUP (or …/GROUP/-/blob/main/catalog-info.yaml)")
    if kind is None:
        raise DescriptorError("Not a discovery target.", target, field="target")
    integration = for_url(url)
    if integration is None or integration.type != PREFIXES[kind]:
        raise DescriptorError(f"{url or target} is not on a {TITLES[PREFIXES[kind]]} host: configure it in "
                              f"PLINTH_INTEGRATIONS (expected {expected}).", target, field="target")
    segments = [unquote(s) for s in urlsplit(url).path.split("/") if s]
    if urlsplit(url).query or not all(plain_segment(s) for s in segments):
        raise DescriptorError(f"{url} has a query or dot segments; expected {expected}.", target, field="target")
    scope = _github_scope(integration, segments) if kind == "github-discovery" else _gitlab_scope(integration, segments)
    if scope is None:
        raise DescriptorError(f"{url} does not name an organisation or group to scan; expected {expected}.",
                              target, field="target")
    return scope


def _github_scope(i: Integration, segments: list[str]) -> Scope | None:
    if len(segments) == 1:
        return Scope(i, segments[0], "*", None, DEFAULT_PATH)
    if len(segments) >= 5 and segments[2] == "blob":
        ref = None if segments[3] == "*" else segments[3]
        return Scope(i, segments[0], segments[1], ref, "/".join(segments[4:]))
    return None


def _gitlab_scope(i: Integration, segments: list[str]) -> Scope | None:
    if "-" not in segments:
        return Scope(i, "/".join(segments), "*", None, DEFAULT_PATH) if segments else None
    at = segments.index("-")
    rest = segments[at + 1:]
    if at >= 1 and len(rest) >= 3 and rest[0] == "blob":
        return Scope(i, "/".join(segments[:at]), "*", None if rest[1] == "*" else rest[1], "/".join(rest[2:]))
    return None


def discover(client: Client, scope: Scope) -> dict[str, str]:
    """The file URLs to read, one per repository (not archived, matching the glob, with a branch), each
    with the repository's version: when it was last pushed to (GitHub `pushed_at`, GitLab
    `last_activity_at`) and the branch; "" when the host does not say. A file whose version is what
    the last complete scan saw need not be fetched again (catalog.ingest.reader.Reader)."""
    files = {}
    for repo in _repositories(client, scope):
        if repo.get("archived"):
            continue
        name = repo.get("full_name") if scope.integration.type == "github" else repo.get("path_with_namespace")
        short = repo.get("name") or ""
        ref = scope.ref or repo.get("default_branch")
        if not isinstance(name, str) or not ref or not fnmatch.fnmatchcase(short, scope.repo_glob):
            continue  # an empty repository has no default branch
        pushed = repo.get("pushed_at") if scope.integration.type == "github" else repo.get("last_activity_at")
        version = f"{pushed}|{ref}" if isinstance(pushed, str) and pushed else ""
        files[FileRef(scope.integration, name, ref, scope.path).blob_url()] = version
    return dict(sorted(files.items()))


def _repositories(client: Client, scope: Scope):
    i = scope.integration
    url: str | None = scope.listing_url
    seen = 0
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"} \
        if i.type == "github" else {"Accept": "application/json"}
    while url:
        answer = client.get(url, headers=headers, credentials=i.credentials(url), integration=i,
                            max_bytes=LISTING_MAX_BYTES)
        what = "organisation" if i.type == "github" else "group"
        if answer.status == 404:
            raise DiscoveryFailed(f"{i.title} ({i.host}) has no {what} '{scope.owner}' (or the token may not "
                                  f"see it): HTTP 404 from {answer.url}", url)
        if not 200 <= answer.status < 300:
            raise DiscoveryFailed(f"{i.title} ({i.host}) answered HTTP {answer.status} listing the repositories "
                                  f"of {what} '{scope.owner}' ({answer.url}); nothing was changed.", url)
        try:
            items = json.loads(answer.body)
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise DiscoveryFailed(f"{i.title} ({i.host}) answered a repository list that is not a JSON list "
                                  f"({answer.url}).", url)
        seen += len(items)
        if seen > MAX_REPOSITORIES:
            raise DiscoveryFailed(f"More than {MAX_REPOSITORIES} repositories in {scope.owner}; narrow the "
                                  "target (a repository glob or a subgroup).", url)
        yield from (item for item in items if isinstance(item, dict))
        url = _next_page(answer, url)


def _next_page(answer, url: str) -> str | None:
    for target, rel in _LINK.findall(answer.headers.get("link", "")):
        if rel.strip() == "next":
            return target
    following = answer.headers.get("x-next-page", "").strip()  # GitLab's offset pagination
    if digits(following):
        parts = urlsplit(url)
        query = re.sub(r"(^|&)page=\d*", "", parts.query).strip("&")
        return parts._replace(query=f"{query}&page={following}" if query else f"page={following}").geturl()
    return None
