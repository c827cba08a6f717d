"""The reader: a location's descriptor sources (files, URLs, code-host scans, a Feast repository) read
into candidate entities. Engine-agnostic, and it never touches the database.

It yields candidates (validated, placeholders resolved, relations derived) and errors that name
file, line and field; `catalog.ingest.planner` compares them with what is stored and
`catalog.ingest.writer` stores the plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlsplit

from django.conf import settings

from portal.core import urlparts

from .. import discovery, feast_sync, integrations
from ..descriptors.errors import DescriptorError
from ..descriptors.fetch import HTTPStatusError, check_url, fetch_url
from ..descriptors.loader import Document, load_documents, load_documents_fast
from ..descriptors.placeholders import resolve_placeholders
from ..descriptors.refs import parse_ref
from ..descriptors.text import descriptor_words
from ..descriptors.validate import KINDS, normalize, storable_errors, validate_entity

log = logging.getLogger("plinth.catalog")
CANONICAL_KIND = {name.lower(): name for name in KINDS}
VISIBILITY_ANNOTATION = "plinth.dev/visibility"
# Where an entity's docs folder is (built by portal.techdocs): the catalog owns its descriptors' keys.
DOCS_ANNOTATIONS = ("plinth.dev/techdocs-ref", "backstage.io/techdocs-ref")
DESCRIPTOR_NAME = "catalog-info.yaml"
UPLOAD_PREFIX = "upload:"  # an uploaded folder: `upload:<folder>`, its files `upload:<folder>/<path>` (catalog.uploads)
MAX_SOURCES = 20_000
READER_NICENESS = 10
PARALLEL_MIN_FILES = 4  # files per extra reading process: below that, forking costs more than it saves
FETCH_THREADS = 8  # URLs of one level (a discovery scan's files) fetched at once: the wait is the network's


@dataclass(eq=False)
class Candidate:
    ref: str
    kind: str
    namespace: str
    name: str
    source: str
    line: int
    content_hash: str
    relations: list[tuple[str, str]]  # (type, target ref key), outgoing only
    data_json: str  # the normalised descriptor as stored; the content hash covers exactly this text
    _data: dict | None = None
    _columns: dict | None = field(default=None, repr=False)
    # Derived with the columns, so that a candidate read in another process needs no decoding.
    _annotations: dict = field(default_factory=dict, repr=False)
    _words: str = field(default="", repr=False)
    _model_card: str = field(default="", repr=False)

    @property
    def data(self) -> dict:
        if self._data is None:  # a candidate read in another process travels as its JSON text only
            self._data = json.loads(self.data_json)
        return self._data

    def __reduce__(self):
        """Travel between processes as one flat tuple, derived facts included and the decoded dict
        left out: a pool worker sends 250k of these, and unpickling a tuple of strings is ~7x cheaper
        than rebuilding the dataclass and its dicts attribute by attribute."""
        self._derive()  # computed where the data is already decoded
        cols = self._columns
        return _candidate_from_wire, (
            self.ref, self.kind, self.namespace, self.name, self.source, self.line, self.content_hash,
            tuple(self.relations), self.data_json, tuple(cols.values()), tuple(self._annotations.items()),
            self._words, self._model_card,
        )

    @property
    def kind_key(self) -> str:
        return self.kind.lower()

    def columns(self) -> dict:
        """The Entity columns of this candidate, `data` included (a fresh dict: callers add their own)."""
        return {**self.row, "data": self.data}

    @property
    def annotations(self) -> dict:
        return self._derive()._annotations

    @property
    def model_card(self) -> str:
        """A Model's spec.modelCard path ("" when none)."""
        return self._derive()._model_card

    @property
    def words(self) -> str:
        """descriptors.text.descriptor_words of this descriptor, for the search index."""
        return self._derive()._words

    @property
    def row(self) -> dict:
        """The Entity columns without `data`, computed once; read-only."""
        columns = self._columns  # set already for every candidate read in another process
        return columns if columns is not None else self._derive()._columns  # type: ignore[return-value]

    def _derive(self) -> Candidate:
        """Compute the columns and the facts derived with them, once."""
        if self._columns is None:
            self._columns = self._compute_columns()
        return self

    def _compute_columns(self) -> dict:
        meta, spec = self.data["metadata"], self.data.get("spec") or {}
        self._annotations = dict(meta.get("annotations") or {})
        card = spec.get("modelCard") if self.kind == "Model" and isinstance(spec, dict) else None
        self._model_card = card.strip() if isinstance(card, str) else ""
        self._words = descriptor_words(self.kind_key, spec if isinstance(spec, dict) else {}, meta)
        owner = _ref_key(spec.get("owner"), "group")
        system = _ref_key(spec.get("system"), "system")
        visibility = (meta.get("annotations") or {}).get(VISIBILITY_ANNOTATION, "internal")
        return {
            "ref": self.ref,
            "kind": self.kind,
            "kind_key": self.kind_key,
            "namespace": self.namespace,
            "name": self.name,
            "name_key": self.name.lower(),
            "api_version": self.data["apiVersion"],
            "title": str(meta.get("title") or "")[:300],
            "description": str(meta.get("description") or ""),
            # Lowercased: filters and facets compare case-insensitively, as Backstage does.
            "spec_type": spec["type"][:100].lower() if isinstance(spec.get("type"), str) else "",
            "lifecycle": spec["lifecycle"][:100].lower() if isinstance(spec.get("lifecycle"), str) else "",
            "owner_ref": owner,
            "system_ref": system,
            "visibility": "private" if visibility == "private" else "internal",
            "tags": list(meta.get("tags") or []),
            "source": self.source[:2000],
            "content_hash": self.content_hash,
        }


# The keys of Candidate.row, in the order `_compute_columns` writes them (a candidate's row travels
# between processes as its values alone).
ROW_KEYS = ("ref", "kind", "kind_key", "namespace", "name", "name_key", "api_version", "title", "description",
            "spec_type", "lifecycle", "owner_ref", "system_ref", "visibility", "tags", "source", "content_hash")


def _candidate_from_wire(ref, kind, namespace, name, source, line, content_hash, relations, data_json, values,
                         annotations, words, model_card) -> Candidate:
    return Candidate(ref, kind, namespace, name, source, line, content_hash, list(relations), data_json,
                     _columns=dict(zip(ROW_KEYS, values, strict=True)), _annotations=dict(annotations),
                     _words=words, _model_card=model_card)


@dataclass
class SourceRead:
    """What reading one source produced; merged into the ReadResult in source order."""

    source: str
    digest: str | None = None  # None: the source could not be read (see errors)
    unchanged: bool = False
    candidates: list[Candidate] = field(default_factory=list)
    children: list[str] = field(default_factory=list)
    errors: list[DescriptorError] = field(default_factory=list)


@dataclass
class ReadResult:
    candidates: dict[str, Candidate] = field(default_factory=dict)
    errors: list[DescriptorError] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # source -> content hash
    children: dict[str, list[str]] = field(default_factory=dict)  # source -> Location targets
    unchanged_sources: set[str] = field(default_factory=set)
    # A discovery scan that completed: file URL → repository version, for the next scan (None otherwise).
    discovery_state: dict[str, str] | None = None


def _ref_key(value, default_kind: str) -> str:
    if not value or not isinstance(value, str | dict):
        return ""
    try:
        return parse_ref(value, default_kind=default_kind).key()
    except ValueError:
        return ""


def content_hash(data: dict) -> str:
    return _sha256(dump(data))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def dump(data: dict) -> str:
    """The stored JSON text of a descriptor; also what its content hash covers. Key order is the
    author's (YAML order), which is stable for an unchanged file."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def classify_target(target: str, roots: list[str] | None = None) -> str:
    """'url', 'dir', 'file' or 'feast' (a Feast feature repository: `feast:/path`) — or raise DescriptorError."""
    target = target.strip()
    if not target:
        raise DescriptorError("A location target is required.", field="target")
    if (kind := discovery.location_type(target)) is not None:
        return kind
    if target.startswith(UPLOAD_PREFIX):
        return "upload"
    if feast_sync.is_target(target):
        repo = feast_sync.repo_path(target)
        if not repo.startswith("/") or "\x00" in repo:
            raise DescriptorError("A Feast location is `feast:` followed by the absolute path of the feature "
                                  "repository's folder.", source=target, field="target")
        check_file_root(repo, roots)
        if not os.path.isdir(repo):
            raise DescriptorError("No such folder (the Feast feature repository).", source=target, field="target")
        return "feast"
    scheme = urlparse(target).scheme.lower()
    if scheme in {"http", "https"}:
        return "url"
    if scheme and len(scheme) > 1:
        raise DescriptorError(f"Unsupported location scheme '{scheme}:' (use a path or an http(s) URL).",
                              source=target, field="target")
    if "\x00" in target:
        raise DescriptorError("A path cannot contain a NUL character.", field="target")
    # The roots first: "no such file" for a path outside them would tell a caller which files exist
    # anywhere on the server.
    check_file_root(target, roots)
    path = Path(target)
    try:
        if path.is_dir():
            return "dir"
        if path.is_file():
            return "file"
    except OSError as exc:  # a name too long for the file system, a folder it may not enter
        raise DescriptorError(f"This path cannot be read ({exc.strerror}).", source=target, field="target") from exc
    raise DescriptorError("No such file or directory.", source=target, field="target")


def stored_target(kind: str, target: str, roots: list[str] | None) -> str:
    """A target of this kind (`classify_target`) as the Reader names it and a location stores it: a path
    (or a Feast repository's) is its real path, so `/srv/repo/`, `/srv/./repo` and a link to it are one
    location; an upload or a scan stripped; a URL as given."""
    if kind == "feast":
        return feast_sync.PREFIX + check_file_root(feast_sync.repo_path(target.strip()), roots)
    if kind in ("file", "dir"):
        return check_file_root(target, roots)
    return target if kind == "url" else target.strip()


def canonical_target(target: str, roots: list[str] | None) -> str:
    """`target` as a location stores it (`stored_target`), to find the location registered for it
    however it is spelt. DescriptorError where the Reader would refuse the target."""
    target = target.strip()
    return stored_target(classify_target(target, roots), target, roots)


def refuse_unreadable_url(target: str) -> None:
    """A new URL location that the fetcher refuses by policy (scheme, host allow-list, an address that
    is private or does not resolve) could never be read: registering it is refused, storing nothing.
    A server that answers with an error is another matter: that location is stored with its error.
    A code-host URL must name a file (or, for discovery, an organisation or group), and what is
    checked is the API URL the reader will call."""
    target = target.strip()
    try:
        urlsplit(target).port  # noqa: B018 - raises ValueError for "http://[::1", a port out of range
    except ValueError as exc:
        raise DescriptorError(f"Not a valid URL: {exc}.", source=target, field="target") from None
    if discovery.location_type(target) is not None:
        url = discovery.parse_target(target).listing_url
    elif urlparse(target).scheme.lower() not in {"http", "https"}:
        return  # paths are judged by the Reader, against the file roots first
    else:
        ref = integrations.parse_file_url(target)
        url = ref.request()[0] if ref is not None else target
    try:
        check_url(url, allowed_hosts=settings.PLINTH_CATALOG_ALLOWED_HOSTS or None,
                  allow_private=settings.PLINTH_CATALOG_ALLOW_PRIVATE_URLS)
    except DescriptorError as exc:
        raise DescriptorError(exc.message, source=target, field="target") from None


def refuse_unreadable_feast(target: str, roots: list[str] | None) -> None:
    """A new Feast location whose repository has no readable registry (missing, corrupt, not a registry,
    not a file registry) is refused, storing nothing; a registered one that breaks later keeps its
    entities and shows the error."""
    if feast_sync.is_target(target) and classify_target(target, roots) == "feast":
        try:
            feast_sync.check(target.strip())
        except DescriptorError as exc:
            raise DescriptorError(f"{exc.message} ({exc.source})" if exc.source else exc.message,
                                  source=target, field="target") from None


def check_file_root(path: str, roots: list[str] | None) -> str:
    """Return the real path, refusing anything outside the allowed roots (None = no restriction)."""
    real = os.path.realpath(path)
    if roots is None:
        return real
    for root in roots:
        root_real = os.path.realpath(root)
        if real == root_real or real.startswith(root_real.rstrip(os.sep) + os.sep):
            return real
    raise DescriptorError(
        "This path is outside the folders the catalog may read (PLINTH_CATALOG_FILE_ROOTS).",
        source=path, field="target",
    )


class Reader:
    """Reads one location (following Location entities) into a ReadResult."""

    def __init__(self, target: str, *, file_roots: list[str] | None, known: dict[str, tuple[str, list]] | None = None,
                 discovery_state: dict[str, str] | None = None, upload_dir: str | None = None,
                 kept: dict[str, tuple[str, bytes | None]] | None = None):
        """`upload_dir`: for an uploaded folder (`upload:<folder>`), this node's copy of its files
        (catalog.uploads): read from there, named `upload:<folder>/<path>` in sources and errors.
        `kept`: a discovery scan's files that an earlier, stopped scan fetched, source → (repository
        version, bytes or None for "no such file"): taken instead of a request while the version holds."""
        self.kind = classify_target(target, file_roots)
        if self.kind == "upload" and upload_dir is None:
            raise DescriptorError("An uploaded folder is read from its stored files only.", source=target,
                                  field="target")
        self.target = stored_target(self.kind, target, file_roots)
        if self.kind == "upload":
            self.root = os.path.realpath(upload_dir)
            # `upload:<folder>/<path>`: one descriptor of the folder is the location (like a file
            # location; a published scaffolder repository's catalog-info.yaml), the rest is what it
            # may refer to. Files are still named from the folder.
            self._upload_name, _, self._upload_entry = self.target.partition("/")
        elif self.kind == "feast":
            self.root = self.target.removeprefix(feast_sync.PREFIX)
        elif self.kind in discovery.PREFIXES:
            self.root = None
        else:
            # Location targets and $text files must stay inside the registered folder.
            self.root = (self.target if self.kind == "dir" else os.path.dirname(self.target)) if self.kind != "url" else None
        self.known = known or {}
        self.result = ReadResult()
        self._seen: set[str] = set()
        self._initial: list[str] | None = None
        self._pool = None  # reading processes kept for the whole read (start_processes)
        self._can_fork = True  # False once a pool could not start here (e.g. in a daemonic worker)
        self.client = integrations.Client()  # code-host requests of this read share its rate limits
        # Why a discovery scan stopped (its listing failed, a rate limit): the read then holds that
        # error only, so the stored entities stay as they are.
        self.aborted: DescriptorError | None = None
        self.previous_versions = discovery_state or {}  # what the last complete scan saw
        self.versions: dict[str, str] = {}  # what this scan lists
        self._absent: set[str] = set()  # listed files that do not exist (404), or did not and were not pushed to
        self.kept = kept or {}
        # What this scan fetched from the code host (source → (version, bytes or None)): kept by the
        # caller when the scan stops, so the next one resumes (catalog.models.ScanFile).
        self.fetched: dict[str, tuple[str, bytes | None]] = {}

    # -- sources -------------------------------------------------------------------------
    def _find_sources(self) -> list[str]:
        if self.kind in discovery.PREFIXES:
            self.versions = discovery.discover(self.client, discovery.parse_target(self.target))
            return list(self.versions)
        if self.kind not in ("dir", "upload") or (self.kind == "upload" and self._upload_entry):
            return [self.target]
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in {"node_modules", ".venv"})
            if DESCRIPTOR_NAME in filenames:
                found.append(self._named(os.path.join(dirpath, DESCRIPTOR_NAME)))
        return found

    def _named(self, path: str) -> str:
        """A file's source name: its path, or `upload:<folder>/<path>` for an uploaded folder."""
        if self.kind != "upload":
            return path
        return f"{self._upload_name}/{os.path.relpath(path, self.root).replace(os.sep, '/')}"

    def _local(self, source: str) -> str:
        """The file a source name stands for on this node (an uploaded folder's files are named
        `upload:<folder>/<path>`; placeholders resolve to paths in this node's copy)."""
        if self.kind == "upload" and source.startswith(self._upload_name + "/"):
            return os.path.join(self.root, source[len(self._upload_name) + 1:])
        return source

    def read_bytes(self, source: str) -> bytes:
        max_bytes = settings.PLINTH_CATALOG_MAX_BYTES
        if self.kind == "url" or urlparse(source).scheme in {"http", "https"}:
            if (ref := integrations.parse_file_url(source)) is not None:
                try:
                    return integrations.read_file(self.client, ref, max_bytes=max_bytes)
                except DescriptorError as exc:
                    exc.source = source  # the file as registered, not the API call made for it
                    raise
            body, _final = fetch_url(
                source,
                allowed_hosts=settings.PLINTH_CATALOG_ALLOWED_HOSTS or None,
                allow_private=settings.PLINTH_CATALOG_ALLOW_PRIVATE_URLS,
                max_bytes=max_bytes,
                timeout=settings.PLINTH_CATALOG_FETCH_TIMEOUT,
            )
            return body
        real = self._inside_root(source)
        size = os.path.getsize(real)
        if size > max_bytes:
            raise DescriptorError(f"File is {size} bytes, over the {max_bytes}-byte cap.", source=source)
        with open(real, "rb") as fh:
            return fh.read(max_bytes + 1)

    def _placeholder_reader(self, base: str) -> Callable[[str], bytes]:
        """`read` for the placeholders of the descriptor at `base`. A code-host file is read with its
        integration's token only from the descriptor's own repository: otherwise anyone who can write a
        descriptor could copy any file the catalog's token can read into an entity."""
        def read(target: str) -> bytes:
            ref = integrations.parse_file_url(target) if urlparse(target).scheme in {"http", "https"} else None
            if ref is not None and ref.integration.token:
                try:
                    home = integrations.parse_file_url(base) if urlparse(base).scheme in {"http", "https"} else None
                except DescriptorError:
                    home = None
                if home is None or (home.integration.host, home.repo) != (ref.integration.host, ref.repo):
                    raise DescriptorError(f"{ref.blob_url()} is not in the descriptor's repository: placeholders are "
                                          f"read with the {ref.integration.title} token from that repository only",
                                          source=target)
            return self.read_bytes(target)

        return read

    def _inside_root(self, source: str) -> str:
        real = os.path.realpath(self._local(source))
        if self.root is not None and not (real == self.root or real.startswith(self.root.rstrip(os.sep) + os.sep)):
            raise DescriptorError("Path escapes the registered location's folder.", source=source)
        if not os.path.isfile(real):
            raise DescriptorError("No such file.", source=source)
        return real

    def resolve_child(self, source: str, target: str, field: str = "spec.target") -> str:
        """A Location's target (at `field`) as the source the reader visits next: a URL or a path
        relative to the descriptor's own. Text that is no URL (`http://[bad`) is an error naming it."""
        scheme = urlparts.scheme(target)
        if scheme is None:
            raise DescriptorError(f"{target[:200]!r} is not a valid URL or path.", source=source, field=field)
        if scheme in {"http", "https"} or urlparts.scheme(source) in {"http", "https"}:
            try:
                return integrations.join(source, target)
            except ValueError as exc:
                raise DescriptorError(str(exc), source=source, field=field) from None
        if scheme:
            raise DescriptorError(f"Unsupported Location target '{target[:200]}'.", source=source, field=field)
        return os.path.normpath(os.path.join(os.path.dirname(source), target))

    # -- main loop -------------------------------------------------------------------------
    def read(self, on_candidates: Callable[[list[Candidate]], None] | None = None, batch: int = 0) -> ReadResult:
        """Breadth first: the found files, then the Location targets they name, level by level
        (the order a queue would visit them in). A level of many local files is read in parallel.

        `on_candidates`: called with the newly accepted candidates every `batch` of them and at the
        end of each level, while the reading processes go on (see catalog.services._stream)."""
        try:
            queue = list(self.initial_sources())
        except DescriptorError as exc:
            if self.kind not in discovery.PREFIXES:
                raise
            return self._abort(exc)
        fresh: list[Candidate] = []
        while queue:
            level, stop = [], False
            for source in queue:
                if source in self._seen:
                    continue
                self._seen.add(source)
                if len(self._seen) > MAX_SOURCES:
                    self.result.errors.append(DescriptorError(f"More than {MAX_SOURCES} files; stopped.", source=source))
                    stop = True
                    break
                level.append(source)
            queue = []
            try:
                # A scan's level is read whole before any of it is merged: a rate limit part-way
                # through leaves nothing half-read (see _abort).
                outcomes = list(self._read_level(level)) if self.kind in discovery.PREFIXES else self._read_level(level)
                for outcome in outcomes:
                    queue.extend(self.commit_source(outcome, fresh if on_candidates else None))
                    if on_candidates and len(fresh) >= batch:
                        on_candidates(fresh)
                        fresh = []
            except integrations.RateLimited as exc:
                return self._abort(exc)
            if on_candidates and fresh:
                on_candidates(fresh)
                fresh = []
            if stop:
                break
        if self.kind in discovery.PREFIXES:
            done = set(self.result.sources) | self._absent  # files with an error are fetched again next time
            self.result.discovery_state = {s: v for s, v in self.versions.items() if v and s in done}
        return self.result

    def _abort(self, exc: DescriptorError) -> ReadResult:
        """Stop a scan as if nothing had been read but this error: no entity is added, changed or removed."""
        self.aborted = DescriptorError(exc.message, source=self.target, field="target")
        self.result = ReadResult(errors=[self.aborted])
        return self.result

    def initial_sources(self) -> list[str]:
        if self._initial is None:
            self._initial = self._find_sources()
        return self._initial

    def start_processes(self) -> bool:
        """Fork the reading processes now, for every level of this read, if the first level is worth
        it. Callers fork before they open a transaction: a worker's heartbeat thread may be waiting
        for the database, and a fork waits for the heartbeat (see portal.core.heartbeat)."""
        sources = self.initial_sources()
        processes = self._processes_for(sources)
        if processes < 2:
            return False
        self._pool = _start_pool(self, processes)
        self._can_fork = self._pool is not None
        return self._can_fork

    def stop_processes(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
            _forget_reader(self)

    def _parallel_ok(self, sources: list[str]) -> bool:
        return self._can_fork and self.kind not in ("url", "feast") and not any("://" in s for s in sources)

    def _processes_for(self, sources: list[str]) -> int:
        """How many processes should read these sources (below 2: read them here)."""
        if not self._parallel_ok(sources):
            return 1
        return min(settings.PLINTH_CATALOG_READ_PROCESSES, len(sources) // PARALLEL_MIN_FILES)

    def _read_level(self, sources: list[str]) -> Iterator[SourceRead]:
        if self._pool is not None and self._parallel_ok(sources):
            yield from self._pool.imap(_read_in_child, sources, chunksize=1)
            return
        processes = self._processes_for(sources)
        if processes > 1:
            outcomes = _read_in_processes(self, sources, processes)
            if outcomes is not None:
                yield from outcomes
                return
            self._can_fork = False
        if len(sources) > 1 and (self.kind in discovery.PREFIXES or self.kind == "url"):
            # Fetching is waiting: a level of URLs (every repository of a scan) is read by threads.
            with ThreadPoolExecutor(FETCH_THREADS) as pool:
                try:
                    yield from pool.map(self.read_source, sources)
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
            return
        for source in sources:
            yield self.read_source(source)

    def read_source(self, source: str) -> SourceRead:
        """Read, parse and validate one source. Touches no shared state but `fetched` (a discovery scan's
        requests, made by threads of this process), so it may run in a child process."""
        if self.kind == "feast":
            return self.read_feast()
        outcome = SourceRead(source)
        if (version := self.versions.get(source)) and self.previous_versions.get(source) == version:
            # Not pushed to since the last complete scan: what that scan read stands, without a request.
            if (known := self.known.get(source)) is not None:
                outcome.digest, outcome.unchanged, outcome.children = known[0], True, list(known[1])
            else:
                self._absent.add(source)
            return outcome
        kept = self.kept.get(source) if version else None
        if kept is not None and kept[0] != version:
            kept = None  # pushed to since a stopped scan fetched it
        if kept is not None and kept[1] is None:
            self._absent.add(source)  # a stopped scan found no descriptor at this version
            return outcome
        try:
            if kept is not None:
                raw = kept[1]
            else:
                raw = self.read_bytes(source)
                if version:
                    self.fetched[source] = (version, raw)
        except integrations.RateLimited:
            raise  # the whole scan stops (Reader.read)
        except HTTPStatusError as exc:
            if exc.status == 404 and self.kind in discovery.PREFIXES and source in self.initial_sources():
                self._absent.add(source)
                if version:
                    self.fetched[source] = (version, None)
                return outcome  # this repository has no descriptor: not an error, nothing read
            exc.source = exc.source or source
            outcome.errors.append(exc)
            return outcome
        except DescriptorError as exc:
            exc.source = exc.source or source
            outcome.errors.append(exc)
            return outcome
        except OSError as exc:
            outcome.errors.append(DescriptorError(f"Could not read: {exc.strerror or exc}", source=source))
            return outcome
        outcome.digest = hashlib.sha256(raw).hexdigest()
        known = self.known.get(source)
        if known and known[0] == outcome.digest:
            outcome.unchanged, outcome.children = True, list(known[1])
            return outcome
        max_bytes = settings.PLINTH_CATALOG_MAX_BYTES
        placeholders = any(marker in raw for marker in (b"$text", b"$json", b"$yaml"))
        fast = load_documents_fast(raw, source, max_bytes=max_bytes)
        if fast is not None:
            found = self.read_documents(fast, [], placeholders)
            if not found[2]:
                outcome.candidates, outcome.children, outcome.errors = found
                return outcome
        # The careful loader: counts aliases and nesting as it goes, and knows the line of every key.
        documents, errors = load_documents(raw, source, max_bytes=max_bytes)
        outcome.candidates, outcome.children, outcome.errors = self.read_documents(documents, errors, placeholders)
        return outcome

    def read_feast(self) -> SourceRead:
        """A Feast repository: its registry's feature views as FeatureSet descriptors (catalog.feast_sync).
        The source is the registry file; it counts as unchanged when neither it, the repository's
        configuration nor the Dataset entities its sources resolve to changed."""
        repo = feast_sync.read(self.target)
        outcome = SourceRead(repo.source, errors=list(repo.errors))
        if not repo.digest:  # nothing could be read: the location says why, its entities stay
            return outcome
        outcome.digest = repo.digest
        known = self.known.get(repo.source)
        if known and known[0] == repo.digest:
            outcome.unchanged = True
            return outcome
        for index, data in enumerate(repo.descriptors):
            candidate, errors = build_candidate(Document(data=data, source=repo.source, line=0, index=index))
            outcome.errors.extend(errors)
            if candidate is not None:
                outcome.candidates.append(candidate)
        return outcome

    def read_documents(self, documents: list[Document], errors: list, placeholders: bool = True) -> tuple[list, list, list]:
        candidates: list[Candidate] = []
        children: list[str] = []
        errors = list(errors)
        for doc in documents:
            candidate, doc_children, doc_errors = self.read_document(doc, placeholders)
            errors.extend(doc_errors)
            if candidate is not None:
                candidates.append(candidate)
            children.extend(doc_children)
        return candidates, children, errors

    def commit_source(self, outcome: SourceRead, fresh: list[Candidate] | None = None) -> list[str]:
        """Merge one source's outcome into the result (appending its accepted candidates to `fresh`);
        returns the Location targets to read next."""
        source, errors = outcome.source, list(outcome.errors)
        if outcome.digest is None:
            self.result.errors.extend(errors)
            return []
        self.result.sources[source] = outcome.digest
        self.result.children[source] = outcome.children
        if outcome.unchanged:
            self.result.unchanged_sources.add(source)
            return outcome.children
        for candidate in outcome.candidates:
            previous = self.result.candidates.get(candidate.ref)
            if previous is not None:
                errors.append(DescriptorError(
                    f"Entity {candidate.ref} is defined twice (first at {previous.source}:{previous.line}).",
                    source=candidate.source, line=candidate.line, field="metadata.name",
                ))
                continue
            self.result.candidates[candidate.ref] = candidate
            if fresh is not None:
                fresh.append(candidate)
        self.result.errors.extend(errors)
        return outcome.children

    def read_document(self, doc: Document, placeholders: bool = True) -> tuple[Candidate | None, list[str], list[DescriptorError]]:
        """One document → (candidate or None, Location targets, errors). Writes nothing.
        `placeholders`: whether its file mentions $text/$json/$yaml at all."""
        data = doc.data
        if placeholders:
            try:
                data = resolve_placeholders(
                    doc.data, base=self._local(doc.source), read=self._placeholder_reader(doc.source),
                    max_bytes=settings.PLINTH_CATALOG_MAX_BYTES, root=self.root, join=integrations.join,
                )
            except DescriptorError as exc:
                exc.source, exc.line = exc.source or doc.source, exc.line or doc.line
                return None, [], [exc]
        resolved = Document(data=data, source=doc.source, line=doc.line, index=doc.index, field_lines=doc.field_lines)
        candidate, errors = build_candidate(resolved)
        if candidate is None:
            return None, [], errors
        if candidate.kind != "Location":
            return candidate, [], []
        data = candidate.data
        spec = data.get("spec") or {}
        targets = ([("spec.target", spec["target"])] if spec.get("target") else []) + [
            (f"spec.targets[{i}]", t) for i, t in enumerate(spec.get("targets") or [])]
        children, errors = [], []
        for where, target in targets:
            try:
                children.append(self.resolve_child(doc.source, str(target), where))
            except DescriptorError as exc:
                exc.line = exc.line or doc.field_lines.get(where) or doc.line
                errors.append(exc)
        return candidate, children, errors


def build_candidate(doc: Document) -> tuple[Candidate | None, list[DescriptorError]]:
    """One resolved document → (candidate, []) or (None, errors): validated and normalised. Also the
    way in for descriptors the portal writes itself (a Deployment reported by a CD pipeline), so they
    are held to exactly the rules of a descriptor read from a file."""
    relations: list = []
    errors = validate_entity(doc, relations)
    if errors:
        return None, errors
    data = normalize(doc.data)
    kind = CANONICAL_KIND[str(data["kind"]).lower()]
    meta = data["metadata"]
    text = dump(data)
    # How the JSON text shows a NUL, or a number that is not finite (a descriptor the portal writes
    # itself did not come through the loader, which refuses them): storable_errors names the field.
    if ("\\u0000" in text or "Infinity" in text or "NaN" in text) and (errors := storable_errors(doc)):
        return None, errors
    return Candidate(
        ref=f"{kind.lower()}:{meta['namespace']}/{meta['name']}".lower(),
        kind=kind, namespace=meta["namespace"], name=meta["name"],
        source=doc.source, line=doc.line, content_hash=_sha256(text),
        relations=[(rtype, target.key()) for rtype, target in relations],
        data_json=text, _data=data,
    ), []


# -- parallel reading ---------------------------------------------------------------------------
# Parsing and validating is pure CPU in Python; a directory of many files is split across forked
# processes. Children inherit the Reader (roots, known hashes, settings) and touch neither the
# database nor shared state; candidates come back as their JSON text (see Candidate.__getstate__).

_FORK_READER: Reader | None = None


def _read_in_child(source: str) -> SourceRead:
    assert _FORK_READER is not None
    return _FORK_READER.read_source(source)


def _start_pool(reader: Reader, processes: int):
    """A pool of forked reading processes that inherit `reader`, or None when none can start here."""
    global _FORK_READER
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover (no fork on this platform)
        return None
    _FORK_READER = reader
    try:
        return context.Pool(processes, initializer=_yield_to_the_writer)
    except (AssertionError, OSError) as exc:  # e.g. a daemonic process may not have children
        log.warning("reading in one process: %s", exc)
        _FORK_READER = None
        return None


def _yield_to_the_writer() -> None:
    """Reading processes run at a lower priority than the process that forked them: while a
    streamed registration writes, the writer is the critical path and should not wait for a core
    (see catalog.services._stream); the readers take whatever is left."""
    with contextlib.suppress(OSError):  # not permitted here: read at the same priority
        os.nice(READER_NICENESS)


def _forget_reader(reader: Reader) -> None:
    global _FORK_READER
    if _FORK_READER is reader:
        _FORK_READER = None


def _read_in_processes(reader: Reader, sources: list[str], processes: int) -> list[SourceRead] | None:
    """The outcomes in source order, or None when processes cannot be started here."""
    pool = _start_pool(reader, processes)
    if pool is None:
        return None
    try:
        with pool:
            return pool.map(_read_in_child, sources, chunksize=1)
    finally:
        _forget_reader(reader)
