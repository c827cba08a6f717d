"""Reading a docs folder into rendered pages. Pure: files in, a `SiteBuild` out; no database.

Owns the annotation (`plinth.dev/techdocs-ref` / `backstage.io/techdocs-ref: dir:<path>`), the
containment rule (the docs folder, every page and image must resolve, symlinks included, inside the
registered location's folder), the caps (pages, bytes, images), mkdocs.yml (nav order and titles
only: plugins, hooks, themes and markdown_extensions are never read) and per-page errors, so that
one bad file never stops the rest of the site.
"""

from __future__ import annotations

import hashlib
import html
import os
import posixpath
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import quote, urlsplit

import yaml

from catalog import uploads
from catalog.descriptors.errors import DescriptorError
from catalog.ingest.reader import DOCS_ANNOTATIONS
from portal.core import urlparts

from . import rendering

BUILDER_VERSION = "1"
TECHDOCS_ANNOTATIONS = DOCS_ANNOTATIONS  # the catalog's descriptor keys
EDIT_URL_ANNOTATION = "backstage.io/edit-url"
PAGE_SUFFIXES = (".md", ".markdown")
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp", ".svg": "image/svg+xml"}
MAX_PAGES = 5000
MAX_FILES = 20_000
MAX_PAGE_BYTES = 1024 * 1024
MAX_SITE_BYTES = 64 * 1024 * 1024
MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAX_IMAGES_BYTES = 32 * 1024 * 1024
MAX_MKDOCS_BYTES = 256 * 1024
MAX_NAV_ENTRIES = 5000
MAX_EDIT_URL = 2000  # DocSite.edit_url / edit_base
RENDER_SECONDS = 300  # rendering budget of one build: the pages after it are not rendered
SLOW_PAGE_SECONDS = 10  # a page slower than this is reported
RATE_MIN_BYTES = 64 * 1024  # rendered before this build's bytes/s is trusted to skip a page too big for what is left
# First URL segments (or whole URLs) the portal's own routes take below a site (techdocs/urls.py).
RESERVED_PAGE_PATHS = ("_rebuild/", "_definition-source/")
RESERVED_PAGE_PREFIXES = ("_assets/",)


class BuildError(Exception):
    """A problem that stops the whole site (no docs folder, escaping paths, URL locations)."""


@dataclass
class PageBuild:
    path: str  # URL path below the site: "" or "guide/start/"
    source_path: str  # relative to the docs folder, posix
    title: str = ""
    html: str = ""
    toc: list = field(default_factory=list)
    text: str = ""
    order: int = 0
    error: str = ""
    source_hash: str = ""


@dataclass
class AssetBuild:
    path: str
    content_type: str
    data: bytes


@dataclass
class SiteBuild:
    source_dir: str
    source_hash: str
    site_name: str = ""
    nav: list = field(default_factory=list)
    nav_html: str = ""
    edit_base: str = ""
    pages: list[PageBuild] = field(default_factory=list)
    assets: list[AssetBuild] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)


def techdocs_ref(entity) -> str | None:
    annotations = entity.annotations
    for key in TECHDOCS_ANNOTATIONS:
        value = annotations.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def location_root(entity) -> str:
    """The real path of the folder the entity's location may read, or BuildError."""
    location = entity.location
    if location is None or not entity.source:
        raise BuildError("This entity has no registered location (an orphan or an MLflow-only entity), "
                         "so there is no folder to read docs from.")
    if location.type == "url" or urlsplit(entity.source).scheme in {"http", "https"}:
        raise BuildError("Docs can only be built from local file locations for now; this entity was "
                         f"registered from a URL ({location.target[:200]}).")
    try:
        target = os.path.realpath(uploads.file_path(
            uploads.folder_target(location.target) if location.type == "upload" else location.target))
    except DescriptorError as exc:
        raise BuildError(exc.message) from None
    return target if location.type in ("dir", "upload") else os.path.dirname(target)


def resolve_relative(entity, relative: str, root: str) -> str:
    """A path relative to the entity's descriptor, resolved (symlinks too) and kept inside `root`."""
    if "\x00" in relative or relative.startswith("/") or urlparts.scheme(relative) != "":
        raise BuildError(f"'{relative[:200]}' must be a path relative to the descriptor.")
    try:
        base = os.path.dirname(os.path.realpath(uploads.file_path(entity.source)))
    except DescriptorError as exc:
        raise BuildError(exc.message) from None
    real = os.path.realpath(os.path.join(base, relative))
    if not inside(real, root):
        raise BuildError(f"'{relative[:200]}' resolves outside the registered location's folder; refused.")
    return real


def docs_dir_for(entity) -> str:
    ref = techdocs_ref(entity)
    if ref is None:
        raise BuildError("No techdocs annotation (plinth.dev/techdocs-ref: dir:./docs).")
    kind, sep, target = ref.partition(":")
    if not sep or kind != "dir":
        raise BuildError(f"Unsupported techdocs reference '{ref[:200]}': only 'dir:<relative path>' is "
                         "supported for now.")
    root = location_root(entity)
    real = resolve_relative(entity, target or ".", root)
    if not os.path.isdir(real):
        raise BuildError(f"The docs folder '{target}' does not exist next to {os.path.basename(entity.source)}.")
    return real


# -- mkdocs.yml: nav order and titles only --------------------------------------------------------
class _MkdocsLoader(yaml.SafeLoader):
    """Safe loader where any tag (`!!python/name:...`, `!ENV`) becomes None instead of an error:
    mkdocs.yml files carry such tags for plugins we deliberately ignore."""


_MkdocsLoader.add_multi_constructor("", lambda loader, suffix, node: None)


def read_mkdocs(folder: str, docs_root_limit: str) -> tuple[dict, list[dict]]:
    """{"site_name", "nav", "docs_dir", "edit_base"} from mkdocs.yml (or .yaml) in `folder`."""
    for name in ("mkdocs.yml", "mkdocs.yaml"):
        path = os.path.join(folder, name)
        if not os.path.isfile(path):
            continue
        if not inside(os.path.realpath(path), docs_root_limit):
            return {}, [{"path": name, "message": "mkdocs.yml resolves outside the location's folder; ignored."}]
        if os.path.getsize(path) > MAX_MKDOCS_BYTES:
            return {}, [{"path": name, "message": f"mkdocs.yml is over {MAX_MKDOCS_BYTES} bytes; ignored."}]
        try:
            with open(path, "rb") as fh:
                data = yaml.load(fh.read().decode("utf-8"), Loader=_MkdocsLoader)  # noqa: S506 (a SafeLoader)
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            return {}, [{"path": name, "message": f"mkdocs.yml is not valid YAML: {str(exc).splitlines()[0]}"}]
        except RecursionError:  # PyYAML composes nested lists and mappings recursively
            return {}, [{"path": name, "message": "mkdocs.yml is nested too deeply to read (lists or mappings "
                                                  "inside each other hundreds of levels deep); ignored."}]
        if not isinstance(data, dict):
            return {}, [{"path": name, "message": "mkdocs.yml must be a mapping; ignored."}]
        out: dict = {"site_name": str(data.get("site_name") or "")[:300] if isinstance(
            data.get("site_name"), str) else ""}
        if isinstance(data.get("docs_dir"), str):
            out["docs_dir"] = data["docs_dir"]
        if "nav" in data:
            out["nav"] = data["nav"]
        repo, edit = data.get("repo_url"), data.get("edit_uri")
        problems = []
        if isinstance(repo, str) and urlparts.scheme(repo) in {"http", "https"}:
            edit = edit if isinstance(edit, str) else "edit/main/docs/"
            edit_base = repo.rstrip("/") + "/" + edit.strip("/") + "/"
            if len(edit_base) > MAX_EDIT_URL - 400:  # room for the page's path (at most 400 characters)
                problems.append({"path": name, "message": f"mkdocs.yml repo_url and edit_uri make an edit URL of "
                                 f"{len(edit_base)} characters, over {MAX_EDIT_URL - 400}; ignored (no edit links)."})
            else:
                out["edit_base"] = edit_base
        return out, problems
    return {}, []


def page_url_path(source_path: str) -> str:
    """mkdocs-style directory URLs: index.md -> "", guide/start.md -> "guide/start/"."""
    stem = PurePosixPath(source_path)
    stem = stem.with_suffix("")
    if stem.name in {"index", "README"}:
        parent = str(stem.parent)
        return "" if parent == "." else parent + "/"
    return str(stem) + "/"


def reserved_page_path(url_path: str) -> bool:
    """Whether the portal's own routes (rebuild, assets, definition source) take this page's URL."""
    return url_path in RESERVED_PAGE_PATHS or url_path.startswith(RESERVED_PAGE_PREFIXES)


def _pretty(source_path: str) -> str:
    stem = PurePosixPath(source_path).with_suffix("")
    name = stem.parent.name if stem.name in {"index", "README"} and str(stem.parent) != "." else stem.name
    if stem.name in {"index", "README"} and str(stem.parent) == ".":
        return "Home"
    return name.replace("-", " ").replace("_", " ").capitalize()


# -- the build -------------------------------------------------------------------------------------
class _SitePolicy(rendering.LinkPolicy):
    def __init__(self, builder: SiteBuilder, source_path: str):
        self.builder, self.source_path = builder, source_path

    def _resolve(self, target: str) -> str | None:
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(self.source_path), target))
        if joined.startswith("../") or joined == ".." or joined.startswith("/"):
            self.builder.problem(self.source_path, f"Link escapes the docs folder and was removed: {target[:120]}")
            return None
        return "" if joined == "." else joined

    def link(self, target: str, fragment: str) -> str | None:
        rel = self._resolve(target) if target else self.source_path
        if rel is None:
            return None
        pages = self.builder.page_paths
        candidates = [rel, rel.rstrip("/") + "/index.md", rel.rstrip("/") + ".md", rel.rstrip("/") + "/README.md"]
        for candidate in candidates:
            if candidate in pages:
                return self.builder.url(pages[candidate]) + rendering.prefix_fragment(fragment)
        if rel in self.builder.image_files:
            return self.image(target)
        self.builder.problem(self.source_path, f"Broken link: '{target[:120]}' is not a page of these docs.")
        return None

    def image(self, target: str) -> str | None:
        rel = self._resolve(target)
        if rel is None:
            return None
        if rel not in self.builder.image_files:
            self.builder.problem(self.source_path, f"Broken image: '{target[:120]}' is not an image in the docs folder.")
            return None
        self.builder.referenced_images.add(rel)
        return self.builder.asset_url(rel)


class SiteBuilder:
    """Builds one site. `base_url` is where the site is served, e.g. /docs/component/default/x/."""

    def __init__(self, docs_dir: str, *, base_url: str, limit_root: str, stored_hash: str = ""):
        self.limit_root = limit_root
        self.folder = docs_dir
        self.base_url = base_url
        self.stored_hash = stored_hash
        self.errors: list[dict] = []
        self.page_paths: dict[str, str] = {}  # source path -> URL path
        self.image_files: dict[str, str] = {}  # source path -> real path
        self.referenced_images: set[str] = set()

    def problem(self, path: str, message: str) -> None:
        if len(self.errors) < 500:
            self.errors.append({"path": path, "message": message})

    def url(self, page_path: str) -> str:
        return self.base_url + quote(page_path)

    def asset_url(self, rel: str) -> str:
        return self.base_url + "_assets/" + quote(rel)

    def _walk(self, root: str) -> list[str]:
        files: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d not in {"node_modules", "site"})
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                files.append(os.path.join(dirpath, name))
                if len(files) > MAX_FILES:
                    raise BuildError(f"The docs folder has more than {MAX_FILES} files.")
        return files

    def build(self) -> SiteBuild:
        """The site from its folder: nothing rendered when the sources hash to `stored_hash` (the
        caller keeps what is stored). BuildError for a folder that cannot be a site."""
        mk, mk_errors = read_mkdocs(self.folder, self.limit_root)
        self.errors.extend(mk_errors)
        real_root = self._docs_root(mk)
        sources = self._sources(real_root)
        raw, source_hash = self._read(sources)
        result = SiteBuild(source_dir=real_root, source_hash=source_hash, site_name=mk.get("site_name", ""),
                           edit_base=mk.get("edit_base", ""))
        if source_hash != self.stored_hash:
            self._render(result, mk, sources, raw)
        return result

    def _docs_root(self, mk: dict) -> str:
        """The folder the pages are in: mkdocs.yml's `docs_dir`, mkdocs' default `docs/`, or the folder."""
        root = self.folder
        if "docs_dir" in mk:
            if "\x00" in mk["docs_dir"]:
                raise BuildError("mkdocs.yml docs_dir holds a NUL character.")
            root = os.path.realpath(os.path.join(self.folder, mk["docs_dir"]))
            if not inside(root, self.limit_root) or not os.path.isdir(root):
                raise BuildError(f"mkdocs.yml docs_dir '{mk['docs_dir'][:200]}' is missing or outside the location.")
        elif mk and os.path.isdir(os.path.join(self.folder, "docs")):
            root = os.path.realpath(os.path.join(self.folder, "docs"))  # mkdocs' default docs_dir
        return os.path.realpath(root)

    def _sources(self, real_root: str) -> dict[str, str]:
        """The pages (relative path → real path); the images go to `image_files`. What cannot be
        served (too long a path, a link out of the folder) is a problem of the build, not a page."""
        sources: dict[str, str] = {}
        for path in self._walk(real_root):
            rel = os.path.relpath(path, real_root).replace(os.sep, "/")
            suffix = os.path.splitext(rel)[1].lower()
            if suffix not in PAGE_SUFFIXES and suffix not in IMAGE_TYPES:
                continue
            if len(rel) > 400:
                self.problem(rel[:200] + "…", "Path longer than 400 characters; skipped.")
                continue
            real = os.path.realpath(path)
            if not inside(real, real_root) or not inside(real, self.limit_root):
                self.problem(rel, "Symbolic link pointing outside the docs folder; refused.")
                continue
            if not os.path.isfile(real):
                continue
            if suffix in PAGE_SUFFIXES:
                if reserved_page_path(page_url_path(rel)):
                    self.problem(rel, f"This page would be served at '{page_url_path(rel)}', a URL the portal "
                                      "reserves for its own use, so no link could reach it; skipped. Rename it.")
                    continue
                sources[rel] = real
            else:
                self.image_files[rel] = real
        if len(sources) > MAX_PAGES:
            raise BuildError(f"The docs folder has {len(sources)} pages; at most {MAX_PAGES} are built.")
        if not sources:
            raise BuildError("The docs folder contains no Markdown pages (*.md).")
        return sources

    def _read(self, sources: dict[str, str]) -> tuple[dict[str, bytes | None], str]:
        """Each page's bytes (None: over MAX_PAGE_BYTES, not read) and the hash of everything the site
        is made from: the builder's version, where it is served, the pages, the images and mkdocs.yml."""
        raw: dict[str, bytes | None] = {}
        digest = hashlib.sha256(f"{BUILDER_VERSION}\0{self.base_url}\0".encode())
        total = 0
        for rel in sorted(sources):
            size = os.path.getsize(sources[rel])
            if size > MAX_PAGE_BYTES:
                raw[rel] = None
                digest.update(f"{rel}\0{size}\0big\0".encode())
                continue
            total += size
            if total > MAX_SITE_BYTES:
                raise BuildError(f"The docs are larger than {MAX_SITE_BYTES // (1024 * 1024)} MiB in total.")
            with open(sources[rel], "rb") as fh:
                raw[rel] = fh.read(MAX_PAGE_BYTES + 1)
            digest.update(f"{rel}\0".encode() + hashlib.sha256(raw[rel]).digest())
        for rel in sorted(self.image_files):
            st = os.stat(self.image_files[rel])
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        for name in ("mkdocs.yml", "mkdocs.yaml"):
            path = os.path.join(self.folder, name)
            if os.path.isfile(path) and os.path.getsize(path) <= MAX_MKDOCS_BYTES:
                with open(path, "rb") as fh:
                    digest.update(fh.read())
        return raw, digest.hexdigest()

    def _render(self, result: SiteBuild, mk: dict, sources: dict[str, str], raw: dict[str, bytes | None]) -> None:
        """The pages rendered, in the nav's order then by depth, and the nav, assets and problems."""
        self.page_paths = {rel: page_url_path(rel) for rel in sources}
        nav_titles: dict[str, str] = {}
        nav_order: dict[str, int] = {}
        nav = self._nav(mk.get("nav"), nav_titles, nav_order) if "nav" in mk else []

        md = rendering.new_markdown()
        pages: list[PageBuild] = []
        deadline = time.monotonic() + RENDER_SECONDS
        rendered_bytes, rendered_seconds = 0, 0.0  # of this build's pages so far: its speed
        for rel in sorted(sources):
            left = deadline - time.monotonic()
            size = len(raw[rel] or b"")
            estimate = size * rendered_seconds / rendered_bytes if rendered_bytes >= RATE_MIN_BYTES else 0.0
            if left < 0 or estimate > left:  # the pages already rendered are kept
                page = PageBuild(path=self.page_paths[rel], source_path=rel, title=nav_titles.get(rel) or _pretty(rel))
                page.error = (f"Not rendered: this build spent its {RENDER_SECONDS}-second rendering budget on "
                              "the pages before this one. Split or shorten the slowest pages (see the other problems)."
                              if left < 0 else
                              f"Not rendered: at this build's speed so far ({rendered_bytes / rendered_seconds / 1024:.0f}"
                              f" KiB/s) this {size / 1024:.0f} KiB page would take about {estimate:.0f} seconds, more "
                              f"than the {left:.0f} seconds left of its {RENDER_SECONDS}-second rendering budget. "
                              "Split it into smaller pages.")
                self.problem(rel, page.error)
                pages.append(page)
                continue
            started = time.monotonic()
            page = self._page(rel, raw[rel], md, nav_titles.get(rel))
            pages.append(page)
            took = time.monotonic() - started
            if page.html:  # rendered (not refused as too large or binary): its speed counts
                rendered_bytes, rendered_seconds = rendered_bytes + size, rendered_seconds + took
            if took > SLOW_PAGE_SECONDS:
                self.problem(rel, f"This page took {took:.0f} seconds to render (the whole build may take "
                                  f"{RENDER_SECONDS}); split it into smaller pages.")
        seen: dict[str, str] = {}
        for page in list(pages):
            if page.path in seen:  # guide.md and guide/index.md both want guide/
                self.problem(page.source_path, f"Same URL as {seen[page.path]}; this page was skipped.")
                pages.remove(page)
            seen[page.path] = page.source_path
        by_rel = {p.source_path: p for p in pages}
        ordered = [rel for rel in nav_order if rel in by_rel]
        rest = sorted((rel for rel in by_rel if rel not in nav_order),
                      key=lambda r: (r.count("/"), page_url_path(r) != "", r))
        for index, rel in enumerate(ordered + rest):
            by_rel[rel].order = index
        if not nav:
            nav = self._default_nav(pages)
        else:
            self._fill_titles(nav, by_rel)
        result.nav, result.pages = nav, pages
        result.nav_html = render_nav(nav, self.base_url)
        result.assets = self._assets()
        result.errors = self.errors

    def _page(self, rel: str, body: bytes | None, md, nav_title: str | None) -> PageBuild:
        page = PageBuild(path=self.page_paths[rel], source_path=rel, title=nav_title or _pretty(rel))
        if body is None or len(body) > MAX_PAGE_BYTES:
            page.error = f"This file is larger than {MAX_PAGE_BYTES // 1024} KiB and was not rendered."
        elif b"\x00" in body[:8192]:
            page.error = "This file looks binary (it contains NUL bytes) and was not rendered."
        if page.error:
            self.problem(rel, page.error)
            return page
        page.source_hash = hashlib.sha256(body).hexdigest()
        try:
            text = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            page.error = f"This file is not valid UTF-8 text (byte {exc.start}) and was not rendered."
            self.problem(rel, page.error)
            return page
        front, text, fm_error = rendering.split_front_matter(text)
        if fm_error:
            page.error = fm_error
            self.problem(rel, fm_error)
        try:
            out = rendering.render_markdown(text, _SitePolicy(self, rel), md)
        except Exception as exc:  # Markdown extensions on hostile input must not stop the site
            page.error = f"Could not render this page: {type(exc).__name__}: {str(exc)[:200]}"
            self.problem(rel, page.error)
            return page
        for message in out.problems:
            self.problem(rel, message)
        title = front.get("title") if isinstance(front.get("title"), str) else None
        page.title = (title or nav_title or out.title or _pretty(rel))[:300]
        page.html, page.toc, page.text = out.html, out.toc, out.text[:200_000]
        return page

    def _nav(self, items, titles: dict, order: dict, depth: int = 0, budget: list | None = None) -> list:
        budget = budget if budget is not None else [MAX_NAV_ENTRIES]
        if depth > 6 or not isinstance(items, list):
            if depth == 0 and items is not None:
                self.problem("mkdocs.yml", "nav must be a list; using the default order.")
            return []
        out = []
        for item in items:
            budget[0] -= 1
            if budget[0] < 0:
                break
            title, value = (None, item) if not isinstance(item, dict) else next(iter(item.items()), (None, None))
            title = str(title)[:200] if isinstance(title, str | int | float) else None
            if isinstance(value, list):
                out.append({"title": title or "Section", "children": self._nav(value, titles, order, depth + 1, budget)})
            elif isinstance(value, str):
                if urlparts.scheme(value) in {"http", "https"}:
                    out.append({"title": title or value[:100], "url": value})
                    continue
                rel = posixpath.normpath(value)
                if rel not in self.page_paths:
                    self.problem("mkdocs.yml", f"nav entry '{value[:120]}' is not a page of these docs.")
                    continue
                if title:
                    titles.setdefault(rel, title)
                order.setdefault(rel, len(order))
                out.append({"title": title, "path": self.page_paths[rel], "source": rel})
        return out

    def _fill_titles(self, nav: list, by_rel: dict) -> None:
        for item in nav:
            if "source" in item:
                page = by_rel.get(item.pop("source"))
                item["title"] = item["title"] or (page.title if page else "")
            if "children" in item:
                self._fill_titles(item["children"], by_rel)

    def _default_nav(self, pages: list[PageBuild]) -> list:
        """Without mkdocs.yml: the pages by folder, index first, then alphabetical."""
        root: list = []
        folders: dict[str, list] = {"": root}
        for page in sorted(pages, key=lambda p: p.order):
            folder = posixpath.dirname(page.source_path)
            if folder not in folders:
                children: list = []
                folders[folder] = children
                parent = folders.get(posixpath.dirname(folder), root)
                parent.append({"title": _pretty(folder + ".md"), "children": children})
            folders[folder].append({"title": page.title, "path": page.path})
        return root

    def _assets(self) -> list[AssetBuild]:
        out, total = [], 0
        for rel in sorted(self.referenced_images):
            real = self.image_files[rel]
            size = os.path.getsize(real)
            if size > MAX_IMAGE_BYTES:
                self.problem(rel, f"Image larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB; not served.")
                continue
            total += size
            if total > MAX_IMAGES_BYTES:
                self.problem(rel, "The images of these docs exceed the total size cap; not served.")
                continue
            with open(real, "rb") as fh:
                data = fh.read(MAX_IMAGE_BYTES + 1)
            content_type = sniff_image(data)
            expected = IMAGE_TYPES[os.path.splitext(rel)[1].lower()]
            if content_type != expected:
                self.problem(rel, f"This file is not a valid {expected} image; not served.")
                continue
            out.append(AssetBuild(path=rel, content_type=content_type, data=data))
        return out


def render_nav(nav: list, base_url: str) -> str:
    """The sidebar as HTML, every value escaped. The current page is marked at serve time (`mark_current`)."""
    out = ['<ul class="td-nav">']
    for item in nav:
        title = html.escape(item.get("title") or "Untitled")
        if item.get("children") is not None and "path" not in item and "url" not in item:
            out.append(f'<li><span class="td-nav-section">{title}</span>{render_nav(item["children"], base_url)}</li>')
        elif "url" in item:
            out.append(f'<li><a href="{html.escape(item["url"])}" rel="noopener noreferrer">{title} ↗</a></li>')
        else:
            path = html.escape(quote(item["path"]))
            out.append(f'<li><a href="{html.escape(base_url)}{path}" data-path="{path}">{title}</a></li>')
    out.append("</ul>")
    return "".join(out)


def mark_current(nav_html: str, path: str) -> str:
    marker = f'data-path="{html.escape(quote(path))}"'
    return nav_html.replace(marker, marker + ' aria-current="page"', 1)


def sniff_image(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:1024].lstrip().lower()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    return None
