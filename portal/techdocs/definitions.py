"""API definitions (`spec.definition` of API entities): parsing, checking and summarising.

OpenAPI 2/3: parsed with the catalog's safe YAML loader, checked (shape, every local `$ref` resolves,
no `$ref` chain loops back on itself, no external refs) and turned into an operations table that the
page renders without JavaScript; Swagger UI / Redoc get the same document from the API. AsyncAPI
(channels), GraphQL (types, root fields) and protobuf (services, rpcs, messages) are summarised and
shown as highlighted source. Results are cached by the entity's content hash.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field

from django.core.cache import cache
from pygments import format as format_tokens
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import GraphQLLexer, JsonLexer, ProtoBufLexer, TextLexer, YamlLexer
from pygments.token import Comment, Text

from catalog.descriptors.loader import Limits, parse_stream
from portal.core import markdown_text
from portal.core.numbers import digits

from . import markdown_links, rendering

VERSION = "3"
MAX_HIGHLIGHT = 512 * 1024
# Highlighting costs about 5-10 µs per token, so its budget is tokens per character of source, above what
# real definitions have (measured with Pygments 2.21, tokens per KB: Plinth's openapi.yaml 235 (88,658
# tokens in 377 kB), the same as JSON 131-176, Google's pubsub/schema .proto 98-157, dense GraphQL SDL
# 436, GitHub-style SDL with a """description""" on every field 588 (Pygments' GraphQL lexer is for
# queries: it reads SDL descriptions one character per Error token)). Hostile text is one token per
# character (1,024 per KB: `"a{" * 262144` took 2.4 s here, about 7 s in review). The rest of a text over budget is plain text.
HIGHLIGHT_TOKENS_PER_CHAR = 0.7
HIGHLIGHT_TOKEN_SLACK = 4096  # a short dense stretch (one description) is not over budget by itself
MAX_OPERATIONS = 2000
MAX_REF_HOPS = 64
MAX_SHAPE_ERRORS = 50
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


@dataclass
class Definition:
    type: str
    source: str
    source_html: str = ""
    data: dict | None = None
    errors: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    description_html: str = ""
    operations: list[dict] = field(default_factory=list)
    channels: list[dict] = field(default_factory=list)
    types: list[dict] = field(default_factory=list)
    services: list[dict] = field(default_factory=list)
    interactive: bool = False  # Swagger UI / Redoc may render it


def source_text(entity) -> str:
    value = entity.spec.get("definition")
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, indent=2, ensure_ascii=False)


def for_entity(entity) -> Definition:
    key = f"techdocs:definition:{VERSION}:{entity.pk}:{entity.content_hash}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    result = analyse(entity.spec_type or "", source_text(entity))
    cache.set(key, result, 3600)
    return result


def display_for_entity(entity, parsed: Definition) -> dict:
    """`display_safe(parsed.data)`, cached like the analysis: the API serves it on every viewer load."""
    key = f"techdocs:display:{VERSION}:{entity.pk}:{entity.content_hash}"
    cached = cache.get(key)
    if cached is None:
        cached = display_safe(parsed.data)
        cache.set(key, cached, 3600)
    return cached


def analyse(api_type: str, text: str) -> Definition:
    kind = api_type.lower()
    result = Definition(type=kind, source=text)
    if not text.strip():
        result.errors.append("This API has no definition (spec.definition is empty).")
        return result
    if kind in {"openapi", "asyncapi"}:
        lexer = JsonLexer() if text.lstrip().startswith("{") else YamlLexer()
    elif kind == "graphql":
        lexer = GraphQLLexer()
    elif kind == "grpc":
        lexer = LinearProtoBufLexer()
    else:
        lexer = TextLexer()
    result.source_html, highlighted = _highlight(text, lexer)
    try:
        if kind == "openapi":
            _openapi(result, text)
        elif kind == "asyncapi":
            _asyncapi(result, text)
        elif kind == "graphql":
            _graphql(result, text)
        elif kind == "grpc":
            _protobuf(result, text)
    except Exception as exc:  # hostile input must give an error on the page, never a 500
        result.errors.append(f"Could not read this definition: {type(exc).__name__}: {str(exc)[:200]}")
        result.interactive = False
    if highlighted < len(text):  # after the analysis: a display budget does not make the document invalid
        result.errors.append(
            f"Source highlighting stopped at character {highlighted:,} of {len(text):,}: the "
            f"definition has more than {HIGHLIGHT_TOKENS_PER_CHAR:g} tokens per character there (real "
            f"definitions have under 0.6); the rest is shown as plain text.")
    return result


class LinearProtoBufLexer(ProtoBufLexer):
    """Pygments' protobuf lexer with comments that cannot fail: its `/*…*/` and `//…\\n` rules scan to
    the end of the text from every unclosed `/*` or `//` and then fail, so "/* " * 20000 took 90 s. Here
    an unclosed comment runs to the end of the text (as a compiler reads it): one scan, linear."""

    tokens = {
        **ProtoBufLexer.tokens,
        "root": [
            (r"/(\\\n)?/(\n|[\s\S]*?[^\\]\n|[\s\S]*\Z)", Comment.Single) if token is Comment.Single
            else (r"/(\\\n)?\*[\s\S]*?(\*(\\\n)?/|\Z)", Comment.Multiline) if token is Comment.Multiline
            else rule
            for rule in ProtoBufLexer.tokens["root"]
            for token in [rule[1] if isinstance(rule, tuple) else None]
        ],
    }


def _highlight(text: str, lexer) -> tuple[str, int]:
    """The source as HTML, and how many of its characters were highlighted (the rest is plain text).

    Highlighting is linear but costs per token, and a hostile text is all tokens: highlighting stops
    where the tokens so far exceed HIGHLIGHT_TOKENS_PER_CHAR per character read (plus a slack), so a
    definition costs at most that many tokens per character, whatever its content."""
    formatter = HtmlFormatter(cssclass="codehilite", wrapcode=True)
    if len(text) > MAX_HIGHLIGHT:
        return highlight(text, TextLexer(), formatter), len(text)  # plain text, as before: no tokens to count
    source = lexer._preprocess_lexer_input(text)  # what highlight() lexes: newlines normalised, one added
    tokens = []
    for index, ttype, value in lexer.get_tokens_unprocessed(source):
        if len(tokens) > HIGHLIGHT_TOKEN_SLACK + HIGHLIGHT_TOKENS_PER_CHAR * index:
            tokens.append((Text, source[index:]))  # the formatter escapes it
            return format_tokens(tokens, formatter), index
        tokens.append((ttype, value))
    return format_tokens(tokens, formatter), len(text)


def _load(result: Definition, text: str) -> dict | None:
    values, errors = parse_stream(text, "definition", Limits(max_bytes=4 * 1024 * 1024))
    if errors:
        e = errors[0]
        result.errors.append(f"Not valid YAML/JSON: {e.message}" + (f" (line {e.line})" if e.line else ""))
        return None
    if len(values) != 1 or not isinstance(values[0][2], dict):
        result.errors.append("The definition must be one YAML or JSON mapping.")
        return None
    return values[0][2]


def _pointer(doc: dict, ref: str):
    if not ref.startswith("#"):
        raise LookupError(f"external $ref '{ref[:120]}' is not supported (only '#/...' refs inside the document)")
    node = doc
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and digits(part) and int(part) < len(node):
            node = node[int(part)]
        else:
            raise LookupError(f"$ref '{ref[:120]}' does not resolve")
    return node


def check_refs(doc: dict) -> list[str]:
    """Every $ref resolves; no chain of refs (A -> B -> A) loops. Recursion through properties is fine."""
    errors: list[str] = []
    stack = [doc]
    refs: set[str] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                refs.add(ref)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    for ref in sorted(refs):
        seen = [ref]
        current = ref
        try:
            for _ in range(MAX_REF_HOPS):
                target = _pointer(doc, current)
                nxt = target.get("$ref") if isinstance(target, dict) else None
                if not isinstance(nxt, str):
                    break
                if nxt in seen:
                    errors.append("Cyclic $ref: " + " -> ".join([*seen, nxt]))
                    break
                seen.append(nxt)
                current = nxt
        except LookupError as exc:
            errors.append(str(exc))
        if len(errors) >= 50:
            break
    return errors


def _deref(doc: dict, node, hops: int = 0):
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and hops < MAX_REF_HOPS:
        try:
            node = _pointer(doc, node["$ref"])
        except LookupError:
            return {}
        hops += 1
    return node if isinstance(node, dict) else {}


def _text(value, limit: int = 500) -> str:
    return str(value)[:limit] if isinstance(value, str | int | float) else ""


def plain(value) -> str:
    return markdown_text.plain(_text(value, 1000))


TEXT_KEYS = {"description", "summary", "title"}
URL_KEYS = {"url", "termsOfService"}
SERVER_SCHEMES = frozenset({"http", "https"})
# AsyncAPI servers name their broker protocol as the scheme.
ASYNCAPI_SERVER_SCHEMES = SERVER_SCHEMES | {
    "ws", "wss", "amqp", "amqps", "mqtt", "mqtts", "secure-mqtt", "kafka", "kafka-secure", "nats", "redis",
    "rediss", "stomp", "stomps", "jms", "sns", "sqs", "solace", "ibmmq", "googlepubsub", "pulsar", "pulsar+ssl",
    "anypointmq", "mercure",
}
SWAGGER2_SCHEMES = ("http", "https", "ws", "wss")
MAX_SERVER_EXPANSIONS = 256
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# "api.example.org:8443/v1" reads as scheme "api.example.org" to a URL parser; it is a host and a port.
_HOST_PORT = re.compile(r"(?:localhost|[a-z0-9-]+(?:\.[a-z0-9-]+)+):\d{1,5}(?:[/?#]|$)", re.I)


def display_safe(doc):
    """A copy of an OpenAPI/AsyncAPI document for Swagger UI / Redoc, which render its Markdown themselves.

    - every description, summary and title goes through the docs' nh3 allow-list (no raw HTML), then
      loses Markdown links and images whose target is not http(s)/mailto/relative (markdown_links);
    - other `url`s (contact, license, externalDocs, termsOfService) that are not http(s)/mailto or a
      "/" path are dropped, and so is `x-logo` unless its image is a "/" path on this portal (the CSP
      blocks other origins) and its `href` a safe link;
    - a server stays only with a usable `url`: http(s), relative ("/v1", "v1") or templated
      ("{scheme}://api.example.org") where every expansion through its variables' default and enum
      values is one of those. Any other server (javascript:, data:, no url) is dropped whole: Redoc
      cannot render a server without a url.
    The CSP would still block scripts; this keeps hostile markup and script URLs out of the DOM."""
    problems: list[str] = []
    budget = markdown_links.Budget()
    asyncapi = isinstance(doc, dict) and "asyncapi" in doc
    server_schemes = ASYNCAPI_SERVER_SCHEMES if asyncapi else SERVER_SCHEMES

    def walk(node, key=None, server=False):
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                if server and k == "url":
                    out[k] = v  # judged with its variables by _safe_server
                elif k in URL_KEYS and isinstance(v, str):
                    if _safe_link(v):
                        out[k] = v
                elif k == "servers" and isinstance(v, list | dict):
                    v = _safe_servers(v, server_schemes, url_required=not asyncapi)
                    if isinstance(v, list):
                        v = [walk(e, server=isinstance(e, dict)) for e in v]
                    else:
                        v = {name: walk(e, server=isinstance(e, dict)) for name, e in v.items()}
                    if v:
                        out[k] = v
                elif k == "server" and isinstance(v, dict):  # an OpenAPI Link's server
                    if _safe_server(v, server_schemes) is not None:
                        out[k] = walk(v, server=True)
                elif k == "x-logo":
                    v = _safe_logo(v)
                    if v is not None:
                        out[k] = walk(v, k, server=True)  # its url and href were judged by _safe_logo
                else:
                    out[k] = walk(v, k)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        if key in TEXT_KEYS and isinstance(node, str):
            return markdown_links.strip_unsafe_links(rendering.sanitize(node, rendering.LinkPolicy(), problems),
                                                     budget)
        return node

    out = walk(doc)
    if isinstance(out, dict) and isinstance(out.get("schemes"), list):  # Swagger 2.0
        out["schemes"] = [s for s in out["schemes"] if isinstance(s, str) and s.lower() in SWAGGER2_SCHEMES]
    return out


def _safe_link(value: str) -> bool:
    scheme = markdown_links.target_scheme(value)
    if scheme is None:
        return markdown_links.normalise_target(value).startswith("/")
    return scheme in markdown_links.SAFE_LINK_SCHEMES


def _safe_logo(logo):
    if not isinstance(logo, dict) or not isinstance(logo.get("url"), str):
        return None
    url = markdown_links.normalise_target(logo["url"])
    if not url.startswith("/") or url.startswith("//"):
        return None
    kept = {k: v for k, v in logo.items() if k not in {"url", "href"}} | {"url": logo["url"]}
    if isinstance(logo.get("href"), str) and _safe_link(logo["href"]):
        kept["href"] = logo["href"]
    return kept


def _safe_servers(servers, schemes, *, url_required: bool):
    """The servers worth keeping, in the same shape: OpenAPI's list or AsyncAPI's name → server mapping.
    `$ref`s, AsyncAPI 2 channel server names and AsyncAPI 3 host-based servers are left to the walk."""
    def keep(entry):
        if not isinstance(entry, dict):
            return entry
        if "url" in entry or (url_required and "$ref" not in entry):
            return _safe_server(entry, schemes)
        return entry

    if isinstance(servers, list):
        return [e for e in map(keep, servers) if e is not None]
    return {name: e for name, e in ((n, keep(v)) for n, v in servers.items()) if e is not None}


def _safe_server(server: dict, schemes) -> dict | None:
    url = server.get("url")
    if not isinstance(url, str) or not _server_url_safe(url, server.get("variables"), schemes):
        return None
    return server


def _server_url_safe(url: str, variables, schemes) -> bool:
    if not url.strip() or len(url) > 2000:
        return False
    names = list(dict.fromkeys(_PLACEHOLDER.findall(url)))
    choices = [_variable_values(variables, name) for name in names]
    total = 1
    for values in choices:
        total *= len(values)
    if total > MAX_SERVER_EXPANSIONS:
        return False
    for combination in itertools.product(*choices):
        mapping = dict(zip(names, combination, strict=True))
        expanded = _PLACEHOLDER.sub(lambda m, values=mapping: values[m.group(1)], url)
        if not _plain_server_url(expanded, schemes):
            return False
    return True


def _variable_values(variables, name: str) -> list[str]:
    """Every value a viewer may put in for `{name}`: the default and the enum. An undeclared variable
    counts as empty, so that `java{x}script:` is judged as what it could become."""
    variable = variables.get(name) if isinstance(variables, dict) else None
    if not isinstance(variable, dict):
        return [""]
    enum = variable.get("enum") if isinstance(variable.get("enum"), list) else []
    values = [str(v) for v in [variable.get("default"), *enum] if isinstance(v, str | int | float)]
    return list(dict.fromkeys(values)) or [""]


def _plain_server_url(url: str, schemes) -> bool:
    scheme = markdown_links.target_scheme(url)
    if scheme is None:
        return True  # relative to where the definition is served: "/v1", "v1", "//host/v1"
    if scheme in schemes:
        return True
    return _HOST_PORT.match(markdown_links.normalise_target(url)) is not None


def _list(result: Definition, node: dict, key: str, where: str) -> list:
    """`node[key]` when it is a list (or absent: []); anything else is named as an error, not iterated
    (`servers: 5` was "TypeError: 'int' object is not iterable", `tags: abc` three tags a, b, c)."""
    value = node.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if len(result.errors) < MAX_SHAPE_ERRORS:  # one per operation could be thousands
        result.errors.append(f"OpenAPI '{where}' must be a list, not {_kind(value)}.")
    return []


def _kind(value) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "true/false"
    return "a number" if isinstance(value, int | float) else "a value"


def _openapi(result: Definition, text: str) -> None:
    doc = _load(result, text)
    if doc is None:
        return
    version = _text(doc.get("openapi") or doc.get("swagger"))
    if not (version.startswith("3.") or version == "2.0"):
        result.errors.append("Not an OpenAPI document: 'openapi: 3.x' or 'swagger: \"2.0\"' is required.")
        return
    info = doc.get("info")
    if not isinstance(info, dict) or not info.get("title"):
        result.errors.append("OpenAPI 'info.title' is required.")
        info = info if isinstance(info, dict) else {}
    paths = doc.get("paths")
    if paths is not None and not isinstance(paths, dict):
        result.errors.append("OpenAPI 'paths' must be a mapping.")
        paths = {}
    servers = _list(result, doc, "servers", "servers")
    result.errors.extend(check_refs(doc))
    result.data = doc
    result.info = {"title": _text(info.get("title"), 300), "version": _text(info.get("version"), 100),
                   "openapi": version,
                   "servers": [_text(s.get("url"), 300) for s in servers if isinstance(s, dict)]}
    if isinstance(info.get("description"), str):
        result.description_html = rendering.render_markdown(info["description"], rendering.LinkPolicy()).html
    for path, item in (paths or {}).items():
        item = _deref(doc, item)
        shared = item.get("parameters") if isinstance(item.get("parameters"), list) else []
        for method in METHODS:
            op = item.get(method)
            if not isinstance(op, dict):
                continue
            if len(result.operations) >= MAX_OPERATIONS:
                result.errors.append(f"More than {MAX_OPERATIONS} operations; the table is cut.")
                break
            params = []
            for p in shared + (op.get("parameters") if isinstance(op.get("parameters"), list) else []):
                p = _deref(doc, p)
                if p.get("name"):
                    params.append({"name": _text(p.get("name"), 100), "in": _text(p.get("in"), 20),
                                   "required": bool(p.get("required"))})
            body = _deref(doc, op.get("requestBody"))
            content = body.get("content") if isinstance(body.get("content"), dict) else {}
            responses = op.get("responses") if isinstance(op.get("responses"), dict) else {}
            result.operations.append({
                "method": method.upper(), "path": _text(path, 300),
                "operation_id": _text(op.get("operationId"), 200), "summary": _text(op.get("summary"), 300),
                "description": plain(op.get("description")),
                "tags": [_text(t, 60) for t in _list(result, op, "tags", f"paths.{_text(path, 300)}.{method}.tags")][:5],
                "parameters": params, "request_types": [_text(c, 80) for c in content][:5],
                "responses": [{"code": _text(code, 10), "description": plain(_deref(doc, r).get("description"))[:200]}
                              for code, r in list(responses.items())[:20]],
                "deprecated": bool(op.get("deprecated")),
            })
    result.interactive = not result.errors


def _asyncapi(result: Definition, text: str) -> None:
    doc = _load(result, text)
    if doc is None:
        return
    version = _text(doc.get("asyncapi"))
    if not version:
        result.errors.append("Not an AsyncAPI document: 'asyncapi: <version>' is required.")
        return
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    result.info = {"title": _text(info.get("title"), 300), "version": _text(info.get("version"), 100),
                   "asyncapi": version}
    result.errors.extend(check_refs(doc))
    channels = doc.get("channels") if isinstance(doc.get("channels"), dict) else {}
    ops_by_channel: dict[str, list[str]] = {}
    operations = doc.get("operations") if isinstance(doc.get("operations"), dict) else {}
    for op_name, op in operations.items():  # AsyncAPI 3
        op = _deref(doc, op)
        channel = op.get("channel")
        ref = channel.get("$ref") if isinstance(channel, dict) else None
        name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else ""
        ops_by_channel.setdefault(name, []).append(f"{_text(op.get('action'), 20)} {_text(op_name, 100)}".strip())
    for name, channel in list(channels.items())[:500]:
        channel = _deref(doc, channel)
        ops = [verb for verb in ("publish", "subscribe") if isinstance(channel.get(verb), dict)]  # AsyncAPI 2
        messages = channel.get("messages") if isinstance(channel.get("messages"), dict) else {}
        result.channels.append({
            "name": _text(name, 300), "address": _text(channel.get("address"), 300),
            "description": _text(channel.get("description"), 300),
            "operations": ops + ops_by_channel.get(str(name), []),
            "messages": [_text(m, 100) for m in messages][:20],
        })


# Line starts match `[^\S\n]*` (blanks, not newlines): `^\s*` under re.M runs over every following blank line
# from every line start, quadratic on a text of empty lines. The analysis runs in the web request.
GRAPHQL_TYPE = re.compile(
    r"^[^\S\n]*(?:extend\s+)?(type|input|enum|interface|union|scalar)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
GRAPHQL_FIELD = re.compile(r"^[^\S\n]*([A-Za-z_][A-Za-z0-9_]*)", re.M)
GRAPHQL_NOISE = re.compile(r'"""(.*?)"""|"[^"\n]*"|#[^\n]*', re.S)
MAX_TYPES = 2000


def _graphql(result: Definition, text: str) -> None:
    """A type's block is its `{` up to the first `}` or the next declaration, whichever comes first: the
    blocks never overlap, so the text is read once (a block up to the first `}` re-read the rest of the
    text for every `type A {` with no `}`)."""
    matches = list(itertools.islice(GRAPHQL_TYPE.finditer(text), MAX_TYPES + 1))
    for index, match in enumerate(matches[:MAX_TYPES]):
        kind, name = match.groups()
        fields = []
        limit = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        brace = text.find("{", match.end(), limit)
        if brace != -1 and kind in {"type", "input", "interface", "enum"}:
            end = text.find("}", brace, limit)
            block = GRAPHQL_NOISE.sub("", text[brace + 1:end if end != -1 else limit])
            fields = GRAPHQL_FIELD.findall(block)
        result.types.append({"kind": kind, "name": name, "fields": fields[:100], "root": name in {"Query", "Mutation", "Subscription"}})
    if not result.types:
        result.errors.append("No GraphQL type definitions found (type, input, enum, interface, union, scalar).")


PROTO_SERVICE = re.compile(r"\bservice\s+([A-Za-z_][A-Za-z0-9_]*)\s*\{", re.M)
PROTO_RPC = re.compile(r"\brpc\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*(stream\s+)?([\w.]+)\s*\)\s*returns\s*\(\s*(stream\s+)?([\w.]+)\s*\)")
PROTO_DECL = re.compile(r"^[^\S\n]*(message|enum)\s+([A-Za-z_][A-Za-z0-9_]*)", re.M)
PROTO_PACKAGE = re.compile(r"^[^\S\n]*package\s+([\w.]+)\s*;", re.M)
# One left-to-right pass: strings (kept; "/v1/{name=projects/*}" is not a comment), `//` comments and
# `/* */` comments, where an unclosed one runs to the end of the text. Every alternative succeeds once it
# starts, so no position is scanned twice (`/\*.*?\*/` re-scanned the rest of the text from every `/*`).
PROTO_LEXEMES = re.compile(r"""'[^'\\\n]*(?:\\.[^'\\\n]*)*'?|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|//[^\n]*|/\*.*?(?:\*/|\Z)""",
                           re.S)
MAX_SERVICES = 500


def _strip_proto_comments(text: str) -> str:
    return PROTO_LEXEMES.sub(lambda m: m.group() if m.group()[0] in "\"'" else " ", text)


def _closing_braces(text: str) -> dict[int, int]:
    """Each `{`'s matching `}` (the text's end when it has none), found in one pass."""
    closing: dict[int, int] = {}
    open_at: list[int] = []
    for m in re.finditer(r"[{}]", text):
        if m.group() == "{":
            open_at.append(m.start())
        elif open_at:
            closing[open_at.pop()] = m.start()
    return closing


def _protobuf(result: Definition, text: str) -> None:
    clean = _strip_proto_comments(text)
    package = PROTO_PACKAGE.search(clean)
    result.info = {"package": package.group(1) if package else ""}
    closing = _closing_braces(clean)
    services = list(itertools.islice(PROTO_SERVICE.finditer(clean), MAX_SERVICES + 1))
    for index, match in enumerate(services[:MAX_SERVICES]):
        # Its body ends at its `}` or at the next service, whichever comes first: bodies never overlap.
        limit = services[index + 1].start() if index + 1 < len(services) else len(clean)
        body = clean[match.end():min(closing.get(match.end() - 1, len(clean)), limit)]
        rpcs = [{"name": m.group(1), "request": ("stream " if m.group(2) else "") + m.group(3),
                 "response": ("stream " if m.group(4) else "") + m.group(5)} for m in PROTO_RPC.finditer(body)]
        result.services.append({"name": match.group(1), "rpcs": rpcs[:500]})
    result.types = [{"kind": m.group(1), "name": m.group(2), "fields": [], "root": False}
                    for m in itertools.islice(PROTO_DECL.finditer(clean), MAX_TYPES)]
    if not result.services and not result.types:
        result.errors.append("No protobuf services, messages or enums found.")
