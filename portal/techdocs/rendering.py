"""Markdown to safe HTML: Python-Markdown renders, nh3 sanitises (allow-list), links are rewritten.

Owns the allow-list, the URL policy (relative links and images resolve inside the docs folder only;
`http`, `https` and `mailto` links are kept; everything else, `javascript:` and `data:` included, is
dropped), id prefixing (so that document ids cannot clobber the portal's own DOM) and front-matter.
Nothing here touches the database or the file system.
"""

from __future__ import annotations

import functools
import html as htmllib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import unquote
from xml.etree import ElementTree as etree  # noqa: N813 (Markdown's name)

import markdown
import nh3
from markdown.blockprocessors import HashHeaderProcessor
from markdown.extensions import codehilite
from markdown.extensions.tables import PIPE_LEFT, PIPE_NONE, PIPE_RIGHT, TableProcessor
from markdown.htmlparser import HTMLExtractor
from markdown.preprocessors import HtmlBlockPreprocessor
from pygments.formatters import HtmlFormatter
from pygments.lexers import find_lexer_class_by_name
from pygments.util import ClassNotFound

from catalog.descriptors.loader import Limits, nul_places, parse_stream
from portal.core import urlparts

ID_PREFIX = "doc-"
SAFE_SCHEMES = {"http", "https", "mailto"}
TAGS = {
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "a", "img", "ul", "ol", "li", "dl", "dt", "dd",
    "blockquote", "pre", "code", "span", "div", "em", "strong", "b", "i", "u", "s", "del", "ins", "mark",
    "sub", "sup", "kbd", "abbr", "small", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
    "details", "summary", "figure", "figcaption",
}
ATTRIBUTES = {
    "*": {"id", "class", "title"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "th": {"style", "colspan", "rowspan"},
    "td": {"style", "colspan", "rowspan"},
    "ol": {"start"},
    "abbr": set(),
}
# Classes Markdown's extensions produce: Pygments token classes, admonitions, code languages.
_CLASS_OK = re.compile(r"^(?:[a-z]{1,3}[0-9]?|codehilite|admonition|admonition-title|note|tip|hint|info|"
                       r"warning|caution|danger|error|important|attention|success|example|quote|"
                       r"language-[a-z0-9_+-]{1,30}|toc|footnote|footnote-ref|footnote-backref)$")
FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)


@dataclass
class Rendered:
    html: str
    toc: list[dict]
    title: str
    text: str
    problems: list[str] = field(default_factory=list)


class LinkPolicy:
    """Resolves relative URLs of one page. Subclassed by the builder to know the site's files."""

    def link(self, target: str, fragment: str) -> str | None:  # noqa: ARG002
        return None

    def image(self, target: str) -> str | None:  # noqa: ARG002
        return None


def prefix_fragment(fragment: str) -> str:
    return f"#{ID_PREFIX}{fragment}" if fragment else ""


# -- the scan budget ---------------------------------------------------------------------------------
# Python-Markdown scans from every `[` / `![` to the matching `]` (and from `](` to the matching `)`),
# and its HTML block parser from every `<tag` to the tag's end, both to the end of the text when there
# is none: "[" * 20000 took six minutes. Each render gets a budget of characters these scans may read
# (a few times the text: a normal page reads each link about three times; tags have their own); a scan
# is cut at what is left of it, and one that finds no end there fails, so the `[` or `<` stays text.
# Under the budget the scans are Markdown's own, on the same text: normal pages render exactly as before.
SCAN_BUDGET_MIN = 200_000
SCAN_BUDGET_PER_CHAR = 4
TRUNCATED = ("This page has too many unclosed '[', '](' or '<' to render in full; from some point on, "
             "links, images and HTML tags were left as plain text.")


class _ScanBudget:
    def __init__(self, text_length: int) -> None:
        self.left = max(SCAN_BUDGET_MIN, SCAN_BUDGET_PER_CHAR * text_length)
        self.exhausted = False

    def window(self, wanted: int) -> int:
        """How many of the `wanted` characters up to the end of the text a scan may read."""
        return min(wanted, self.left)

    def spend(self, used: int, *, truncated_miss: bool = False) -> None:
        self.left = max(0, self.left - used)
        self.exhausted = self.exhausted or truncated_miss


def _budget(md: markdown.Markdown, kind: str = "links") -> _ScanBudget:
    """The budget of the render in progress: one for link scans, one for HTML tag scans (so that a few
    stray `<b` in prose, each read to the next `>`, cannot leave the links without one)."""
    budgets = getattr(md, "plinth_scan_budgets", None)
    if budgets is None:  # a Markdown instance used outside render_markdown
        budgets = md.plinth_scan_budgets = {"links": _ScanBudget(0), "html": _ScanBudget(0)}
    return budgets[kind]


class _BudgetedLinks:
    """Mixin for Markdown's link, image and reference processors: their bracket scans read at most
    what is left of the budget (a slice of the text: the same scan, cut short), and nothing once it
    is spent."""

    def _scan(self, scan, data: str, index: int, *, miss_costs_window: bool):
        """`scan(data, index)` (Markdown's own) on at most what is left of the budget: None once it is
        spent, else the scan's answer with its end in `data`. A miss costs what was read, or the whole
        window when `miss_costs_window` (the link scan does not say how far it read)."""
        budget = _budget(self.md)
        wanted = len(data) - index
        window = budget.window(wanted)
        if not window and wanted:
            budget.exhausted = True
            return None
        if window < wanted:
            *found, end, handled = scan(data[index:index + window], 0)
            end += index
        else:
            *found, end, handled = scan(data, index)
        spent = window if miss_costs_window and not handled else end - index
        budget.spend(spent, truncated_miss=window < wanted and not handled)
        return (*found, end, handled)

    def getText(self, data: str, index: int):  # noqa: N802 (Markdown's name)
        found = self._scan(super().getText, data, index, miss_costs_window=False)
        return ("", index, False) if found is None else found

    def getLink(self, data: str, index: int):  # noqa: N802 (Markdown's name)
        found = self._scan(super().getLink, data, index, miss_costs_window=True)
        return ("", None, index, False) if found is None else found


_LINK_PROCESSORS = ("reference", "link", "image_link", "image_reference", "short_reference", "short_image_ref")
_BUDGETED: dict[type, type] = {}


def _budgeted_class(cls: type) -> type:
    if cls not in _BUDGETED:
        _BUDGETED[cls] = type(f"Budgeted{cls.__name__}", (_BudgetedLinks, cls), {})
    return _BUDGETED[cls]


class _BudgetedHTMLExtractor(HTMLExtractor):
    """The HTML block parser with its start-tag scan charged to the budget: once it is spent, a `<`
    is text, as for a tag that never ends."""

    def check_for_whole_start_tag(self, i: int) -> int:
        budget = _budget(self.md, "html")
        wanted = len(self.rawdata) - i
        window = budget.window(wanted)
        if window < wanted:
            match = markdown.htmlparser.htmlparser.locatestarttagend_tolerant.match(self.rawdata, i, i + window)
            if match is None or match.end() >= i + window:  # the tag may go on past the budget: read as text
                budget.spend(window, truncated_miss=True)
                return -1
        end = super().check_for_whole_start_tag(i)
        budget.spend(end - i if end > i else wanted)
        return end


class _BudgetedHtmlBlockPreprocessor(HtmlBlockPreprocessor):
    def run(self, lines: list[str]) -> list[str]:
        parser = _BudgetedHTMLExtractor(self.md)
        parser.feed("\n".join(lines))
        parser.close()
        return "".join(parser.cleandoc).split("\n")


# -- linear-time replacements (same output) ------------------------------------------------------------
class _LinearTableProcessor(TableProcessor):
    """The tables extension's test split the whole block into rows to look at two of them; a block is
    the rest of the text up to a blank line, re-tested after every heading split off its front, so
    `"# a\n" * 6000` took 14 s (quadratic). This splits only the rows it reads; the answer is the same."""

    def test(self, parent, block: str) -> bool:
        if "\n" not in block:
            return False
        first, rest = block.split("\n", 1)
        second = rest.split("\n", 1)[0]
        header0 = first.strip(" ")
        self.border = PIPE_NONE
        if header0.startswith("|"):
            self.border |= PIPE_LEFT
        if self.RE_END_BORDER.search(header0) is not None:
            self.border |= PIPE_RIGHT
        row0_len = len(self._split_row(header0))
        is_table = row0_len > 1
        if not is_table and row0_len == 1 and self.border:  # one column: every row needs a pipe
            start = 0
            while True:
                end = rest.find("\n", start)
                line = (rest[start:] if end < 0 else rest[start:end]).strip(" ")
                is_table = line.startswith("|") or self.RE_END_BORDER.search(line) is not None
                if not is_table or end < 0:
                    break
                start = end + 1
        if is_table:
            row = self._split_row(second.strip(" "))
            is_table = len(row) == row0_len and set("".join(row)) <= set("|:- ")
            if is_table:
                self.separator = row
        return is_table


# The processors Markdown tests before `hashheader`, and why none of them can take what follows a heading
# line when that starts with a character other than a space or a newline, has no `|` in its first line
# and holds no `!!!` line (see _LinearHashHeaderProcessor).
_BEFORE_HASHHEADER = frozenset({"admonition", "empty", "indent", "defindent", "code", "table"})


class _LinearHashHeaderProcessor(HashHeaderProcessor):
    """Markdown's ATX heading processor splits a block at its first heading and puts the rest back as a
    new block, which every processor tests again (the admonition test searches all of it): a block of n
    heading lines cost n copies and searches of the rest, so `"# a\n" * 24000` took 45 s. This takes the
    block's headings in one pass: after each one, it goes on in place while none of the processors tested
    before this one could take the rest (Markdown would give it back to this one: same tree), and only
    otherwise puts the rest back, as Markdown does."""

    def run(self, parent, blocks: list[str]) -> None:
        block = blocks.pop(0)
        processors = self.parser.blockprocessors
        names = [item.name for item in processors._priority]
        admonition = processors["admonition"] if "admonition" in names else None
        in_place = (set(names[:names.index("hashheader")]) <= _BEFORE_HASHHEADER
                    and not self.parser.state.isstate("looselist")
                    and (admonition is None or admonition.RE.search(block) is None))
        m = self.RE.search(block)
        start = 0  # where the rest of the block starts: `block[start:]` is Markdown's new block
        while m:
            before = block[start:max(start, m.start())]  # the `\n` a later match starts with is not part of it
            if before:
                self.parser.parseBlocks(parent, [before])
            h = etree.SubElement(parent, f"h{len(m.group('level'))}")
            h.text = m.group("header").strip()
            start = m.end()
            if start >= len(block):
                return
            if not (in_place and self._rest_is_mine(parent, block, start, admonition)):
                break
            # `block[start - 1]` is the `\n` that ended the heading: from there, the pattern's `(?:^|\n)`
            # finds what it would find at the start of `block[start:]` and after it; `$` is the same end.
            m = self.RE.search(block, start - 1)
        after = block[start:]
        if self.parser.state.isstate("looselist"):  # Markdown's #1443 edge case, as in its own run
            after = self.looseDetab(after)
        blocks.insert(0, after)

    @staticmethod
    def _rest_is_mine(parent, block: str, start: int, admonition) -> bool:
        """Whether no processor tested before this one takes `block[start:]` (whose `!!!` lines, if any,
        the admonition test already found when it passed over the whole block)."""
        if block[start] in " \n":  # the empty, indent, defindent and code tests; the admonition's content
            return False
        if admonition is not None and admonition.current_sibling is not None:
            return False
        end = block.find("\n", start)
        return "|" not in (block[start:] if end < 0 else block[start:end])  # the table test's first row


class _SharedStyleHtmlFormatter(HtmlFormatter):
    """Pygments' HTML formatter, its token-to-class table built once per style instead of once per code
    block (codehilite makes a formatter for each block: 40% of highlighting a page of short blocks)."""

    _tables: dict = {}  # noqa: RUF012 (a process-wide cache of immutable-per-style tables)

    def _create_stylesheet(self) -> None:
        key = (self.style, self.classprefix)
        if key not in self._tables:
            super()._create_stylesheet()
            self._tables[key] = (self.ttype2class, self.class2style)
        t2c, c2s = self._tables[key]
        self.ttype2class, self.class2style = dict(t2c), dict(c2s)


@functools.lru_cache(maxsize=512)  # keyed by a document's code-block language: bounded
def _lexer_class(alias: str) -> type | None:
    try:
        return find_lexer_class_by_name(alias)
    except ClassNotFound:
        return None


def _get_lexer_by_name(_alias: str, **options):
    """Pygments' `get_lexer_by_name` (codehilite calls it once per code block) with the alias looked up
    once: Pygments walks its whole lexer table per call, and its plugin entry points for an unknown
    language, a third of highlighting a card of a thousand short blocks. Same class, same options."""
    cls = _lexer_class(_alias.lower()) if _alias else None
    if cls is None:
        raise ClassNotFound(f"no lexer for alias {_alias!r} found")
    return cls(**options)


codehilite.get_lexer_by_name = _get_lexer_by_name  # the name codehilite's CodeHilite.hilite calls


def new_markdown() -> markdown.Markdown:
    md = markdown.Markdown(
        extensions=["tables", "fenced_code", "codehilite", "admonition", "toc", "sane_lists", "def_list"],
        extension_configs={
            "codehilite": {"css_class": "codehilite", "guess_lang": False, "use_pygments": True,
                           "pygments_formatter": _SharedStyleHtmlFormatter},
            "toc": {"permalink": False},
        },
        output_format="html",
    )
    priorities = {item.name: item.priority for item in md.inlinePatterns._priority}
    for name in _LINK_PROCESSORS:
        old = md.inlinePatterns[name]
        new = _budgeted_class(type(old)).__new__(_budgeted_class(type(old)))
        new.__dict__.update(old.__dict__)
        md.inlinePatterns.register(new, name, priorities[name])
    html_priority = next(item.priority for item in md.preprocessors._priority if item.name == "html_block")
    md.preprocessors.register(_BudgetedHtmlBlockPreprocessor(md), "html_block", html_priority)
    old = md.parser.blockprocessors["table"]
    table = _LinearTableProcessor.__new__(_LinearTableProcessor)
    table.__dict__.update(old.__dict__)
    table_priority = next(item.priority for item in md.parser.blockprocessors._priority if item.name == "table")
    md.parser.blockprocessors.register(table, "table", table_priority)
    old = md.parser.blockprocessors["hashheader"]
    heading = _LinearHashHeaderProcessor.__new__(_LinearHashHeaderProcessor)
    heading.__dict__.update(old.__dict__)
    heading_priority = next(item.priority for item in md.parser.blockprocessors._priority
                            if item.name == "hashheader")
    md.parser.blockprocessors.register(heading, "hashheader", heading_priority)
    return md


def split_front_matter(text: str) -> tuple[dict, str, str | None]:
    """(front matter, body, error). A document without front matter gives ({}, text, None)."""
    match = FRONT_MATTER.match(text)
    if not match:
        if text.startswith("---\n") or text.startswith("---\r\n"):
            return {}, text, "Front matter starts with '---' but has no closing '---' line."
        return {}, text, None
    body = text[match.end():]
    values, errors = parse_stream(match.group(1), "front matter", Limits(max_bytes=64 * 1024, max_aliases=10))
    if errors:
        return {}, body, f"Malformed YAML front matter: {errors[0].message}" + (
            f" (line {errors[0].line + 1})" if errors[0].line else "")
    if not values:
        return {}, body, None
    value = values[0][2]
    if not isinstance(value, dict):
        return {}, body, "Front matter must be a mapping of keys to values."
    if nul_places(value, limit=1):  # the page's title, a model card's front matter: PostgreSQL stores no NUL
        return {}, body, "Front matter holds a NUL character (\\0); it was ignored."
    return value, body, None


def _toc_tokens(tokens: list[dict]) -> list[dict]:
    return [{"level": t["level"], "id": t["id"], "name": htmllib.unescape(t["name"]),
             "children": _toc_tokens(t.get("children") or [])} for t in tokens]


def _first_h1(tokens: list[dict]) -> str:
    for token in tokens:
        if token["level"] == 1:
            return token["name"]
    return ""


def _flatten(tokens: list[dict]) -> list[dict]:
    out = []
    for token in tokens:
        out.append(token)
        out.extend(_flatten(token["children"]))
    return out


def sanitize(raw_html: str, policy: LinkPolicy, problems: list[str]) -> str:
    """The allow-list, with every URL passed through the link policy."""

    def attribute_filter(element: str, attribute: str, value: str) -> str | None:
        if attribute == "id":
            return ID_PREFIX + value
        if attribute == "class":
            kept = [c for c in value.split() if _CLASS_OK.match(c)]
            return " ".join(kept) or None
        if attribute in {"href", "src"}:
            return rewrite_url(value, image=(element == "img"), policy=policy, problems=problems)
        return value

    return nh3.clean(
        raw_html,
        tags=TAGS,
        attributes=ATTRIBUTES,
        attribute_filter=attribute_filter,
        url_schemes=SAFE_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        clean_content_tags={"script", "style"},
        filter_style_properties={"text-align"},
    )


_BROWSER_DROPS = re.compile(r"[\t\n\r]")
_BEFORE_QUERY = re.compile(r"[^?#]*")


def as_browsers_read(value: str) -> str:
    """The URL a browser follows: tabs and newlines dropped anywhere, and a backslash before the query
    read as a slash in http(s) and scheme-less URLs (WHATWG URL), so `/\\evil.com` and `\\\\evil.com` are
    `//evil.com`, another site, not portal paths."""
    value = _BROWSER_DROPS.sub("", value)
    head = _BEFORE_QUERY.match(value).group()
    if "\\" in head and urlparts.scheme(head.replace("\\", "/")) in ("", "http", "https"):
        value = head.replace("\\", "/") + value[len(head):]
    return value


def rewrite_url(value: str, *, image: bool, policy: LinkPolicy, problems: list[str]) -> str | None:
    value = as_browsers_read(value.strip())
    if not value:
        return None
    if value.startswith("#"):
        return prefix_fragment(value[1:])
    parts = urlparts.split(value)
    if parts is None:
        problems.append(f"Invalid URL removed: {value[:80]}")
        return None
    scheme = parts.scheme.lower()
    if scheme or parts.netloc:
        if scheme not in SAFE_SCHEMES and not (not scheme and parts.netloc):
            problems.append(f"Unsafe URL removed: {value[:80]}")
            return None
        if image:
            problems.append(f"External image removed (images must be inside the docs folder): {value[:80]}")
            return None
        return value
    if value.startswith("/"):  # a portal path such as /catalog/: left alone
        return value
    target = unquote(parts.path)
    resolved = policy.image(target) if image else policy.link(target, parts.fragment)
    return resolved


def render_markdown(text: str, policy: LinkPolicy, md: markdown.Markdown | None = None, *,
                    with_text: bool = True) -> Rendered:
    """`with_text=False` leaves `Rendered.text` (the plain text search indexes) empty: a model card has no
    use for it, and reading 1 MB of HTML back into text costs a fifth of the render."""
    md = md or new_markdown()
    md.reset()
    budgets = md.plinth_scan_budgets = {"links": _ScanBudget(len(text)), "html": _ScanBudget(len(text))}
    raw = md.convert(text)
    tokens = _toc_tokens(getattr(md, "toc_tokens", []))
    problems: list[str] = [TRUNCATED] if any(b.exhausted for b in budgets.values()) else []
    clean = sanitize(raw, policy, problems)
    return Rendered(html=clean, toc=tokens, title=_first_h1(tokens),
                    text=plain_text(clean) if with_text else "", problems=problems)


# Elements that are not part of a line of text: their edges separate words. Inline elements (`a`,
# `code`, `em`, `strong`, `span`, ...) do not: "the `plan` (**blocked**)" reads "the plan (blocked)",
# not "the plan ( blocked )".
_BREAKING = frozenset({
    "h1", "h2", "h3", "h4", "h5", "h6", "p", "br", "hr", "img", "ul", "ol", "li", "dl", "dt", "dd",
    "blockquote", "pre", "div", "table", "thead", "tbody", "tfoot", "tr", "th", "td", "caption",
    "details", "summary", "figure", "figcaption",
})


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:  # noqa: ARG002
        if tag in _BREAKING:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _BREAKING:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(html: str) -> str:
    """Sanitised HTML as the one line of plain text search indexes (a docs page's `text`): block elements
    separate words, inline elements join their text to the words around them, whitespace collapses."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    return re.sub(r"\s+", " ", "".join(parser.parts)).strip()


def section_titles(toc: list[dict], level: int = 2) -> list[str]:
    return [t["name"] for t in _flatten(toc) if t["level"] == level]


def pygments_css() -> str:
    return HtmlFormatter(style="default").get_style_defs(".codehilite")


RenderFn = Callable[[str, LinkPolicy], Rendered]
