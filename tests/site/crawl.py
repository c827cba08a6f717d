"""A crawler of the portal's pages for tests (tests/site/test_links.py, test_forms.py): from a start page,
as one signed-in client, every link, GET form, htmx `hx-get`, script, stylesheet and image is resolved;
every page without a query string is fetched (each object's page and tab), and of the addresses that
differ only by their query (filters, sorting, pages of a list) the first few per view; what it finds
wrong comes back as `problems`, and the POST forms of the pages it read as `forms`."""

from __future__ import annotations

from collections import Counter, deque
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlsplit

from django.conf import settings
from django.contrib.staticfiles import finders
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import Resolver404, resolve

HTMX = "htmx "  # marks a link htmx fetches (as the crawl's key: the same address is fetched both ways)
PER_SHAPE = 3  # addresses with a query fetched per view and query-string shape (the keys, not their values)…
PER_VIEW = 20  # …and per view, whatever the query (the catalog's filter combinations are many)
IDENTITY_KWARGS = ("kind", "tab")  # an entity page's tabs differ by kind: each (view, kind, tab) is a view
MAX_PAGES = 3000  # a crawl that reaches it fails: the demo outgrew the bound, raise it
# No page needs more statements than this on the demo (the most today: 22, an entity page). Pages listing
# 25 entities or more would pass it with one statement per row: a blanket guard against N+1 on pages no
# query-count test of their own covers. The KPI canvas runs one statement per KPI its canvas.yaml
# configures, each in a savepoint (80 for the demo's), bounded by that file, not by the data.
MAX_QUERIES = 30
QUERIES_BY_CONFIGURATION = (["insights", "canvas"], ["insights", "canvas-pdf"])
SKIP_PREFIXES = ("/admin/",)  # Django's own admin pages


class Page(HTMLParser):
    """The addresses a page names, and the faults a keyboard or screen-reader user would meet on it:
    an id used twice, a label for no field, an image without alt text, a link or button without a name;
    and lines that read unfinished: a breadcrumb ending in an empty crumb ("Catalog /"), a paragraph
    ending in a separator ("just now ·"), or a block (`<details>`, `<div>`…) inside a `<p>`, which the
    browser's parser ends before the block, stranding whatever came before it."""

    NAMED = ("a", "button")
    # Elements whose start tag closes an open <p> in the HTML parsing algorithm.
    BLOCKS = ("address", "article", "aside", "blockquote", "details", "dialog", "div", "dl", "fieldset",
              "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "menu",
              "nav", "ol", "pre", "section", "table", "ul")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        # POST forms: {"action", "csrf": has a token field, "fields": [(name, type, value or None: unchecked)]}
        self.forms: list[dict] = []
        self._form: dict | None = None
        self._select: list | None = None  # [name, first option's value] of the <select> being read
        self.ids: Counter[str] = Counter()
        self.label_for: set[str] = set()
        self.faults: list[str] = []
        self._open: list[list] = []  # [tag, attrs, name text] of the <a>/<button> being read
        self._p: list | None = None  # [is a breadcrumb, text so far] of the <p> being read

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "p":
            self._end_paragraph()
            self._p = ["crumbs" in (a.get("class") or "").split(), ""]
        elif self._p is not None and tag in self.BLOCKS:
            self.faults.append(f"<{tag}> inside <p> (the browser ends the paragraph before it): {self._p[1].strip()[-60:]!r}")
            self._p = None
        if a.get("id"):
            self.ids[a["id"]] += 1
        if tag in ("a", "link") and a.get("href"):
            self.links.append(a["href"])
        elif tag in ("script", "img") and a.get("src"):
            self.links.append(a["src"])
        elif tag == "form" and (a.get("method") or "get").lower() == "get" and a.get("action"):
            self.links.append(a["action"])
        if a.get("data-spec-url"):  # fetched by a page's script
            self.links.append(a["data-spec-url"])
        if a.get("hx-get"):  # fetched by htmx, which says so in a header: the view may answer a fragment
            self.links.append(HTMX + a["hx-get"])
        if tag == "form" and (a.get("method") or "get").lower() == "post":
            self._form = {"action": a.get("action") or "", "csrf": False, "fields": []}
        elif self._form is not None:
            self._form_field(tag, a)
        if tag == "label" and a.get("for"):
            self.label_for.add(a["for"])
        if tag == "img" and a.get("alt") is None:
            self.faults.append(f"<img src={a.get('src')!r}> has no alt text")
        if tag in self.NAMED:
            named = a.get("aria-label") or a.get("aria-labelledby") or a.get("title")
            self._open.append([tag, a, "x" if named else ""])
        elif self._open and tag == "img" and a.get("alt"):
            self._open[-1][2] += a["alt"]

    def _form_field(self, tag: str, a: dict) -> None:
        name, fields = a.get("name"), self._form["fields"]
        if tag == "option" and self._select is not None and self._select[1] is None:
            self._select[1] = a.get("value", "")
        if not name:
            return
        if tag == "input" and name == "csrfmiddlewaretoken":
            self._form["csrf"] = True
        elif tag == "input" and a.get("type") in ("checkbox", "radio"):
            fields.append((name, a["type"], (a.get("value") or "on") if "checked" in a else None))
        elif tag in ("input", "button"):
            fields.append((name, a.get("type") or ("submit" if tag == "button" else "text"), a.get("value") or ""))
        elif tag == "textarea":
            fields.append((name, "textarea", ""))
        elif tag == "select":
            self._select = [name, None]

    def handle_data(self, data):
        if self._open:
            self._open[-1][2] += data.strip()
        if self._p is not None:
            self._p[1] += data

    def _end_paragraph(self) -> None:
        if self._p is None:
            return
        crumbs, text = self._p[0], " ".join(self._p[1].split())
        if crumbs and text.endswith("/"):
            self.faults.append(f"the breadcrumb {text!r} ends with an empty crumb")
        elif text.endswith("·"):
            self.faults.append(f"the line {text[-60:]!r} ends with a separator")
        self._p = None

    def handle_endtag(self, tag):
        if tag == "p":
            self._end_paragraph()
        if tag == "select" and self._select is not None and self._form is not None:
            self._form["fields"].append((self._select[0], "select", self._select[1] or ""))
            self._select = None
        elif tag == "form" and self._form is not None:
            self.forms.append(self._form)
            self._form = None
        if tag in self.NAMED and self._open and self._open[-1][0] == tag:
            _tag, a, name = self._open.pop()
            if not name:
                self.faults.append(f"<{tag} {' '.join(f'{k}={v!r}' for k, v in a.items())}> has no accessible name")

    def close(self):
        super().close()
        self.faults += [f'id="{i}" is used {n} times' for i, n in self.ids.items() if n > 1]
        self.faults += [f'<label for="{i}"> names no element' for i in sorted(self.label_for - set(self.ids))]


def route_of(path: str, query: str) -> tuple[str, str] | None:
    """(what the page is, the shape of its address): the view and its kind/tab, then the query's keys."""
    try:
        match = resolve(path)
    except Resolver404:
        return None
    view = ":".join([match.view_name, *(str(match.kwargs[k]) for k in IDENTITY_KWARGS if k in match.kwargs)])
    keys = ",".join(sorted({part.split("=", 1)[0] for part in query.split("&") if part}))
    return view, f"{view}?{keys}"


def crawl(client: Client, start: str = "/") -> dict:
    queue: deque[tuple[str, str]] = deque([(start, "(start)")])
    fetched: set[str] = set()
    per_route: Counter[str] = Counter()
    per_view: Counter[str] = Counter()
    problems: list[str] = []
    statics: set[str] = set()
    forms: list[dict] = []
    while queue and len(fetched) < MAX_PAGES:
        key, referrer = queue.popleft()
        if key in fetched:
            continue
        htmx = key.startswith(HTMX)
        url = key.removeprefix(HTMX)
        parts = urlsplit(url)
        route = route_of(parts.path, parts.query)
        if route is None:
            problems.append(f"{url} (linked from {referrer}): no such route")
            continue
        view, shape = (HTMX + part for part in route) if htmx else route
        if parts.query:
            if per_route[shape] >= PER_SHAPE or per_view[view] >= PER_VIEW:
                continue
            per_view[view] += 1
        per_route[shape] += 1
        fetched.add(key)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, HTTP_ACCEPT="text/html", **({"HTTP_HX_REQUEST": "true"} if htmx else {}))
        if len(queries) > MAX_QUERIES and view.removeprefix(HTMX).split(":")[:2] not in QUERIES_BY_CONFIGURATION:
            problems.append(f"{url}: {len(queries)} queries (a page's count must not grow with the data)")
        status = response.status_code
        if status >= 500 or status in (403, 404, 405):
            problems.append(f"{key} (linked from {referrer}): {status}")
            continue
        if status in (301, 302, 303, 307, 308):
            target = urljoin(url, response["Location"])
            if urlsplit(target).netloc in ("", "testserver"):
                queue.append((urlsplit(target)._replace(scheme="", netloc="").geturl(), url))
            continue
        if "text/html" not in response.get("Content-Type", ""):
            continue
        parser = Page()
        parser.feed(response.content.decode("utf-8", "replace"))
        parser.close()
        problems += [f"{url}: {fault}" for fault in parser.faults]
        forms += [{**form, "page": url, "action": urljoin(url, form["action"])} for form in parser.forms]
        for raw in parser.links:
            mark = HTMX if raw.startswith(HTMX) else ""
            link, _fragment = urldefrag(urljoin(url, raw.removeprefix(HTMX)))
            split = urlsplit(link)
            if split.scheme not in ("", "http", "https") or split.netloc not in ("", "testserver"):
                continue
            local = split._replace(scheme="", netloc="").geturl()
            if not split.path or split.path.startswith(SKIP_PREFIXES):
                continue
            if split.path.startswith(settings.STATIC_URL):
                statics.add(split.path)
                continue
            if mark + local not in fetched:
                queue.append((mark + local, key))
    if queue and len(fetched) >= MAX_PAGES:
        problems.append(f"the crawl stopped at MAX_PAGES ({MAX_PAGES}) with {len(queue)} addresses left")
    for path in sorted(statics):
        if not finders.find(path.removeprefix(settings.STATIC_URL)):
            problems.append(f"{path}: no such static file")
    return {"fetched": fetched, "routes": per_route, "problems": problems, "forms": forms}
