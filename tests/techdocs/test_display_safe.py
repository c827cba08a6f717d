"""The display-safe copy of an API definition that Swagger UI and Redoc render: servers stay valid (a url
on every one kept; templated and relative ones kept with their variables; hostile ones dropped whole), and
no description or logo carries a javascript:/vbscript:/data: link — checked against a real CommonMark
renderer (markdown-it-py, with its own link filter switched off) for generated Markdown."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from portal.techdocs import definitions, markdown_links
from portal.techdocs.definitions import display_safe


def openapi(**parts) -> dict:
    return {"openapi": "3.0.3", "info": {"title": "T", "version": "1"}, "paths": {}} | parts


def urls(servers) -> list:
    return [s.get("url") for s in servers]


def test_templated_relative_and_plain_servers_are_kept_with_their_variables():
    servers = [
        {"url": "{scheme}://api.example.org/v1",
         "variables": {"scheme": {"default": "https", "enum": ["http", "https"], "description": "Scheme"}}},
        {"url": "{scheme}://api.example.org/v1"},  # the issue's ordinary spec: no variables declared
        {"url": "https://{region}.example.org:{port}/v2",
         "variables": {"region": {"default": "eu"}, "port": {"default": "8443", "enum": ["443", "8443"]}}},
        {"url": "/v1"}, {"url": "v1"}, {"url": "//api.example.org/v1"}, {"url": "api.example.org:8443/v1"},
        {"url": "http://localhost:8000"},
    ]
    safe = display_safe(openapi(servers=servers))
    assert safe["servers"] == servers


@pytest.mark.parametrize("server", [
    {"url": "javascript:alert(1)"},
    {"url": "  JaVa\tScRipt:alert(1)"},
    {"url": "\x01javascript:alert(1)"},
    {"url": "javascript&#58;alert(1)"},
    {"url": "vbscript:msgbox(1)"},
    {"url": "data:text/html,<script>alert(1)</script>"},
    {"url": "file:///etc/passwd"},
    {"url": "{s}alert(1)", "variables": {"s": {"default": "javascript:"}}},
    {"url": "{s}://x.org", "variables": {"s": {"default": "https", "enum": ["https", "javascript"]}}},
    {"url": "java{gap}script:alert(1)"},  # an undeclared variable expands to nothing
    {"url": "{a}{b}", "variables": {"a": {"default": "x", "enum": [str(i) for i in range(20)]},
                                    "b": {"default": "y", "enum": [str(i) for i in range(20)]}}},  # > 256 expansions
    {"url": ""}, {"url": 42}, {"description": "no url at all"}, {},
])
def test_hostile_or_unusable_servers_are_dropped_whole(server):
    kept = {"url": "https://api.example.org"}
    safe = display_safe(openapi(servers=[server, kept]))
    assert safe["servers"] == [kept]


def test_servers_at_every_level_keep_a_url_and_empty_lists_go():
    doc = openapi(
        servers=[{"url": "javascript:alert(1)"}],
        paths={"/a": {"servers": [{"url": "data:,x"}, {"url": "/path-level"}],
                      "get": {"servers": [{"url": "vbscript:x"}],
                              "responses": {"200": {"description": "ok", "links": {
                                  "bad": {"operationId": "x", "server": {"url": "javascript:1"}},
                                  "good": {"operationId": "y", "server": {"url": "https://b.example.org"}}}}}}}})
    safe = display_safe(doc)
    assert "servers" not in safe  # none left: the viewers fall back to the page's origin
    item = safe["paths"]["/a"]
    assert item["servers"] == [{"url": "/path-level"}] and "servers" not in item["get"]
    links = item["get"]["responses"]["200"]["links"]
    assert "server" not in links["bad"] and links["good"]["server"] == {"url": "https://b.example.org"}


def test_asyncapi_servers_keep_broker_protocols_and_refs():
    doc = {"asyncapi": "2.6.0", "info": {"title": "Events", "version": "1"},
           "servers": {"mqtt": {"url": "mqtt://broker.example.org:1883", "protocol": "mqtt"},
                       "kafka": {"url": "broker.example.org:9092", "protocol": "kafka"},
                       "evil": {"url": "javascript:alert(1)", "protocol": "ws"},
                       "shared": {"$ref": "#/components/servers/shared"}},
           "channels": {"scores": {"servers": ["mqtt"]}}}
    safe = display_safe(doc)
    assert set(safe["servers"]) == {"mqtt", "kafka", "shared"}
    assert safe["channels"]["scores"]["servers"] == ["mqtt"]


def test_swagger2_schemes_are_limited_to_web_ones():
    safe = display_safe({"swagger": "2.0", "info": {"title": "T", "version": "1"}, "host": "api.example.org",
                         "schemes": ["https", "javascript", "HTTP", 3], "paths": {}})
    assert safe["schemes"] == ["https", "HTTP"]


HOSTILE_LINKS = "See [docs](https://docs.example.org), [run](javascript:alert(1)) and [vb](vbscript:msgbox(1))."


def test_markdown_links_lose_script_targets_everywhere_and_keep_their_text():
    doc = openapi(
        info={"title": "T", "version": "1", "description": HOSTILE_LINKS,
              "x-logo": {"url": "/static/img/plinth.svg", "href": "javascript:alert(1)", "altText": "Logo"}},
        tags=[{"name": "pets", "description": "[tag](data:text/html,<b>x</b>)",
               "externalDocs": {"url": "javascript:alert(1)", "description": "[ext](javascript:1) more"}}],
        externalDocs={"url": "https://docs.example.org", "description": "![img](data:image/png;base64,AAAA) pic"},
        paths={"/pets": {"get": {
            "description": "Use [the ref][r].\n\n[r]: javascript:alert(1)\n",
            "parameters": [{"name": "q", "in": "query", "description": "[p](JaVaScRiPt&#58;alert(1))"}],
            "responses": {"200": {"description": "[ok](https://ok.example.org) [r]( javascript:1 \"t\")"}}}}},
        components={"schemas": {"Pet": {"type": "object", "description": "[s](javascript:alert(1))",
                                        "properties": {"name": {"type": "string", "description": "[n](vbscript:1)"}}}}},
    )
    safe = display_safe(doc)
    assert safe["info"]["description"] == "See [docs](https://docs.example.org), run and vb."
    assert safe["info"]["x-logo"] == {"url": "/static/img/plinth.svg", "altText": "Logo"}
    assert safe["tags"][0]["description"] == "tag" and "url" not in safe["tags"][0]["externalDocs"]
    assert safe["tags"][0]["externalDocs"]["description"] == "ext more"
    assert safe["externalDocs"] == {"url": "https://docs.example.org", "description": "img pic"}
    operation = safe["paths"]["/pets"]["get"]
    assert operation["description"].strip() == "Use the ref."
    assert operation["parameters"][0]["description"] == "p"
    assert operation["responses"]["200"]["description"] == "[ok](https://ok.example.org) r"
    pet = safe["components"]["schemas"]["Pet"]
    assert pet["description"] == "s" and pet["properties"]["name"]["description"] == "n"
    assert not re.search(r"(?i)(javascript|vbscript|data):", str(safe))


@pytest.mark.parametrize("logo", [
    {"url": "https://cdn.example.org/logo.png"},  # another origin: the CSP would block it and report
    {"url": "//cdn.example.org/logo.png"},
    {"url": "data:image/png;base64,AAAA"},
    {"url": "javascript:alert(1)"},
    {"href": "https://example.org"},
    "not a mapping",
])
def test_logos_from_elsewhere_are_dropped(logo):
    assert "x-logo" not in display_safe(openapi(info={"title": "T", "version": "1", "x-logo": logo}))["info"]


def test_hostile_definition_from_the_issue_leaves_a_valid_definition():
    """Both defects of issue 14, through the parser and the API's code path."""
    text = """openapi: 3.0.3
info:
  title: Scoring
  version: "1"
  description: "[click](javascript:alert(document.domain))"
  x-logo: {url: /static/img/plinth.svg, href: "javascript:alert(1)"}
servers:
  - url: "{scheme}://api.example.org/v1"
  - url: "javascript:alert(1)"
paths:
  /score: {post: {summary: Score, responses: {'200': {description: ok}}}}
"""
    parsed = definitions.analyse("openapi", text)
    assert parsed.errors == [] and parsed.interactive
    safe = display_safe(parsed.data)
    assert safe["servers"] == [{"url": "{scheme}://api.example.org/v1"}]
    assert safe["info"]["description"] == "click" and "href" not in safe["info"]["x-logo"]


# --- generated input against a real CommonMark renderer ------------------------------------------

NOISE = ["[", "]", "(", ")", "![", "<", ">", " ", "\n", "\n\n", "\t", "\\", '"', ":", "> ", "- ", "x", "label",
         "&#", "&amp;", "%3A", "\u200b", "\x00"]
TARGETS = ["javascript:", "JaVaScRiPt:", "java&#115;cript:", "javascript&#58;", "javascript&colon;", "java\\script:",
           "jav&#x61;script&#x3A;", "java\tscript:", " javascript:", "\x01javascript:", "javascript%3A", "vbscript:",
           "data:text/html,", "DATA:image/svg+xml,", "https://ok.example.org/", "/rel/", "mailto:x@example.org",
           "rel", "#frag"]
target = st.builds(lambda t, payload, angle: f"<{t}{payload}>" if angle else t + payload,
                   st.sampled_from(TARGETS), st.sampled_from(["alert(1)", "x", "", "(1)"]), st.booleans())
title = st.sampled_from(["", ' "t"', " 't'", " (t)"])
link = st.one_of(
    st.builds(lambda bang, text, ws, t, ti: f"{bang}[{text}]({ws}{t}{ti})",
              st.sampled_from(["", "!"]), st.sampled_from(["x", "a [b] c", "![i](/ok.png)", ""]),
              st.sampled_from(["", " ", "\n"]), target, title),
    st.builds(lambda label, t, prefix: f"[x][{label}] [{label}]\n\n{prefix}[{label.upper()}]: {t}\n",
              st.sampled_from(["r", "a b", "R"]), target, st.sampled_from(["", "> ", "- ", "   "])),
)
markdown_text = st.lists(st.one_of(link, st.sampled_from(NOISE)), min_size=1, max_size=12).map("".join)


def _browser_scheme(url: str) -> str | None:
    """The scheme a browser's URL parser finds: C0 controls and spaces trimmed, tabs and newlines removed."""
    cleaned = re.sub(r"[\t\n\r]", "", url).strip("".join(map(chr, range(0x21))))
    match = re.match(r"([A-Za-z][A-Za-z0-9+.\-]*):", cleaned)
    return match.group(1).lower() if match else None


def _rendered_targets(text: str) -> list[tuple[str, str]]:
    md = MarkdownIt("commonmark")
    md.validateLink = lambda url: True  # see every link, including the ones markdown-it would refuse
    found, stack = [], list(md.parse(text))
    while stack:
        token = stack.pop()
        stack.extend(token.children or [])
        if token.type == "link_open":
            found.append(("link", token.attrGet("href") or ""))
        elif token.type == "image":
            found.append(("image", token.attrGet("src") or ""))
    return found


@settings(max_examples=250, deadline=None)
@given(text=markdown_text)
def test_no_generated_markdown_renders_an_unsafe_link(text):
    description = display_safe(openapi(info={"title": "T", "version": "1", "description": text}))["info"]["description"]
    for kind, target in _rendered_targets(description):
        scheme = _browser_scheme(target)
        assert scheme is None or (kind == "link" and scheme in {"http", "https", "mailto"}), (text, description)


@settings(max_examples=120, deadline=None)
@given(text=markdown_text)
def test_markdown_without_unsafe_links_is_left_alone(text):
    if any(_browser_scheme(t) not in {None, "http", "https", "mailto"}
           or kind == "image" and (_browser_scheme(t) or t.startswith("//"))
           for kind, t in _rendered_targets(text)) or "]" in text and re.search(r"(?i)script|data|%|&|\\", text):
        return  # only texts that are plainly safe: those must come back unchanged
    assert markdown_links.strip_unsafe_links(text) == text


SERVER_PIECES = ["{s}", "{t}", "https", "http", "javascript", "java", "script", ":", "//", "/", "api.example.org",
                 ":8443", "/v1", "data", " ", "\t", "&#58;", "localhost", "{", "}", "x"]
server_url = st.lists(st.sampled_from(SERVER_PIECES), min_size=1, max_size=8).map("".join)
variable = st.fixed_dictionaries({"default": st.sampled_from(["https", "http", "javascript:", "java", "x", ""])},
                                 optional={"enum": st.lists(st.sampled_from(["https", "script:", "x", "data:"]),
                                                            max_size=3)})


@settings(max_examples=200, deadline=None)
@given(servers=st.lists(st.fixed_dictionaries({"url": server_url}, optional={
    "variables": st.dictionaries(st.sampled_from(["s", "t"]), variable, max_size=2)}), max_size=4))
@example(servers=[{"url": "api.example.org :8443"}])  # found by hypothesis: blanks before the port
def test_every_kept_server_has_a_url_that_expands_to_a_web_or_relative_one(servers):
    for server in display_safe(openapi(servers=servers)).get("servers", []):
        assert isinstance(server.get("url"), str) and server["url"].strip()
        variables = server.get("variables") or {}
        names = re.findall(r"\{([^{}]*)\}", server["url"])
        value_sets = [[v.get("default", ""), *v.get("enum", [])] if isinstance(v := variables.get(n), dict) else [""]
                      for n in names]
        for values in _product(value_sets):
            expanded = server["url"]
            for name, value in zip(names, values, strict=True):
                expanded = expanded.replace("{" + name + "}", value, 1)
            read = markdown_links.normalise_target(expanded)
            scheme = _browser_scheme(read)
            # host:port read as a "scheme" by a browser, also when blanks stand around the colon
            # (`api.example.org :8443`): a lenient reader drops them, as normalise_target does.
            host_port = re.match(r"(localhost|[\w-]+(\.[\w-]+)+):\d", read.strip())
            assert scheme in {None, "http", "https"} or host_port, (server, expanded)
            assert urlsplit(expanded.strip()).scheme.lower() not in {"javascript", "data", "vbscript"}


def _product(value_sets):
    if not value_sets:
        yield ()
        return
    for first in value_sets[0]:
        for rest in _product(value_sets[1:]):
            yield (first, *rest)


def test_a_backslash_before_a_bracket_does_not_shield_a_link():
    for text in ["\\\\[x](javascript:alert(1))", "\\[a] [x](java\tscript:1) [y](javascript:1)" * 150]:
        out = markdown_links.strip_unsafe_links(text)
        assert all(_browser_scheme(t) in {None, "http", "https"} for _, t in _rendered_targets(out)), out


def test_work_is_bounded_for_a_document_full_of_links():
    """Past the document's budget (and past 2,000 in one text) texts lose their links without analysis:
    brackets become entities, the text stays."""
    many = " ".join(f"[item {i}](https://example.org/{i})" for i in range(1500))
    doc = openapi(paths={f"/p{n}": {"get": {"description": many, "responses": {}}} for n in range(8)},
                  info={"title": "T", "version": "1", "description": many + many})
    safe = display_safe(doc)
    analysed = [safe["paths"][f"/p{n}"]["get"]["description"] for n in range(6)]
    escaped = [safe["info"]["description"]] + [safe["paths"][f"/p{n}"]["get"]["description"] for n in (6, 7)]
    assert all(d == many for d in analysed)
    assert all("&#91;item 1499&#93;(https://example.org/1499)" in d and not _rendered_targets(d) for d in escaped)
