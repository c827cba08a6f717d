"""Structure-aware hostile input for the property-based bad-input tests, and the invariants they check.

Strategies build inputs the way an attacker or a careless author would: a valid thing (a shipped
descriptor, a template's parameters, a docs page, a search query) taken apart and put together wrong.
Every surface that takes such input must keep three invariants (docs/security.md):
a 2xx, or a 4xx whose message names what is wrong and where; a refused write changes nothing; never a 5xx.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import html
import json
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]


# -- budget ---------------------------------------------------------------------------------------


def budget(ci: int) -> settings:
    """Settings for an HTTP-driven property: `ci` examples under the `ci` profile (Hypothesis' 100),
    scaled with the loaded profile's max_examples (`fuzz`: 2,000, so ×20).

    Function-scoped fixtures (the client, the signed-in user, tmp_path) are shared by the examples on
    purpose: each example leaves the database as it found it (see `rolled_back`) or checks it did."""
    return settings(
        max_examples=max(1, ci * settings.default.max_examples // 100),
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


@pytest.fixture(params=[pytest.param("sqlite", id="sqlite"),
                        pytest.param("postgresql", id="postgresql", marks=pytest.mark.prod_smoke)])
def each_backend(request):
    """Runs a test once per database: SQLite in `make test`'s main phase, PostgreSQL in its prod phase
    (a module takes it with `pytestmark = pytest.mark.usefixtures("each_backend")` after importing it)."""
    from django.db import connection

    if connection.vendor != request.param:
        pytest.skip(f"runs on {request.param}; this run uses {connection.vendor}")
    return request.param


# -- invariants -----------------------------------------------------------------------------------


@contextlib.contextmanager
def rolled_back():
    """Each example starts from the same database: what an accepted write stored is undone after it."""
    from django.db import transaction

    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def digest(*models) -> dict[str, str]:
    """Per table, a hash of every row of the given models (all columns, in primary-key order): equal
    before and after means nothing was written, changed or removed (and a difference names the table)."""
    out = {}
    for model in models:
        h = hashlib.sha256()
        for row in model.objects.order_by("pk").values_list():
            h.update(repr(row).encode())
        out[model._meta.db_table] = h.hexdigest()[:16]
    return out


def response_text(response) -> str:
    content = b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content
    return content.decode("utf-8", errors="replace")


def assert_clear(response, *, names: Iterable[str] = ()) -> None:
    """Never a 5xx; a 4xx says what is wrong. `names`: at least one must appear in a 400's message
    (the field, parameter or line the input got wrong; a 404 or 403 is about the thing, not the input)."""
    status = response.status_code
    text = response_text(response)
    assert status < 500, f"{status} for hostile input:\n{text[:2000]}"
    if 400 <= status < 500:
        assert text.strip(), f"{status} with an empty body"
        if response.get("Content-Type", "").startswith("application/json"):
            body = json.loads(text)
            assert body, f"{status} with an empty JSON body"
        wanted = list(names)
        if wanted and status == 400:
            shown = html.unescape(text) if response.get("Content-Type", "").startswith("text/html") else text
            assert any(name in shown for name in wanted), f"{status} names none of {wanted}: {text[:1000]}"


def too_large(response) -> bool:
    """A body over the endpoint's cap (portal.core.limits) is a 413 that names the limit: a clear
    refusal of its own, before anything the example is about could happen."""
    if response.status_code != 413:
        return False
    assert "too large" in response_text(response), response_text(response)[:500]
    return True


def nul_refused(response, fields: dict) -> bool:
    """A NUL in a page form's field is refused before any view runs (portal.core.middleware.
    RejectNulMiddleware): a 400 naming a field that holds one."""
    if response.status_code != 400:
        return False
    holders = [str(k).replace("\x00", "\\x00") for k, v in fields.items() if "\x00" in str(k) or "\x00" in str(v)]
    assert holders, f"400 without a NUL in the form: {response_text(response)[:500]}"
    text = html.unescape(response_text(response))
    assert "Null characters are not allowed" in text and any(f"{h}:" in text for h in holders), text[:1000]
    return True


# -- shared pieces ------------------------------------------------------------------------------

CONTROL = st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp"])
TRICKY_CHARS = st.sampled_from(
    ["\u202e", "\u200b", "\ufeff", "\u0000", "\u0301", "İ", "ß", "ﬁ", "Σ", "🚀", "👩‍👩‍👧", "\r", "\t", "\\", "\u2028"]
)
# Text that means something to some layer: HTML, SQL, shell, template engines, paths, YAML, FTS.
LOADED_STRINGS = st.sampled_from([
    "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "javascript:alert(1)",
    "'; DROP TABLE catalog_entity; --", "1 OR 1=1", "${{ 7*7 }}", "{{ cycler.__init__ }}", "{% debug %}",
    "$(id)", "`id`", "../../../../etc/passwd", "..\\..\\windows", "/etc/passwd", "%2e%2e%2f", "file:///etc/passwd",
    "http://169.254.169.254/latest/meta-data/", "*", "NEAR(a b)", "a AND OR NOT", "~", "null", "None", "NaN",
    "true", "0x10", "1e309", "-0", "&a", "*a", "!!python/object:os.system", "%s%s%s", "\\u0000", "AKIA0000000000000000",
    # Text urllib.parse.urlsplit refuses with ValueError (an unbalanced bracket, a host NFKC turns into a separator).
    "https://[grafana.example/d", "//[x/y", "http://x]/y", "https://a\uff03b/",
])


def unicode_text(max_size: int = 40) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.characters(codec="utf-8"), TRICKY_CHARS), max_size=max_size).map("".join)


HUGE_STRINGS = st.builds(lambda ch, n: ch * n, st.sampled_from(["x", "é", "🚀", "a-", " "]),
                         st.sampled_from([300, 5_000, 70_000]))

HOSTILE_STRINGS = st.one_of(LOADED_STRINGS, unicode_text(), st.text(CONTROL, min_size=1, max_size=8), HUGE_STRINGS,
                            st.just(""), st.just(" "))
HOSTILE_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([2**63, -(2**63) - 1, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False), HOSTILE_STRINGS,
)


def nested(depth: int, leaf="x", as_list: bool = True):
    value = leaf
    for _ in range(depth):
        value = [value] if as_list else {"k": value}
    return value


HOSTILE_VALUES = st.one_of(
    HOSTILE_SCALARS,
    st.recursive(HOSTILE_SCALARS, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8),
    st.builds(nested, st.sampled_from([20, 60, 300]), st.just("x"), st.booleans()),
)


def _paths(tree, prefix=()):
    """(container path, key) of every value in a JSON tree: where a mutation can act."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield prefix, key
            yield from _paths(value, (*prefix, key))
    elif isinstance(tree, list):
        for index, value in enumerate(tree):
            yield prefix, index
            yield from _paths(value, (*prefix, index))


def _at(tree, path):
    for part in path:
        tree = tree[part]
    return tree


@st.composite
def mutated(draw, base: dict, *, values=HOSTILE_VALUES, max_mutations: int = 3, extra_keys=None) -> dict:
    """`base` with 1..max_mutations changes at paths drawn from its own structure: a value replaced by
    one of another type or a hostile one, a key removed, an unknown key added."""
    tree = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_mutations))):
        spots = list(_paths(tree))
        if not spots:
            break
        path, key = draw(st.sampled_from(spots))
        container = _at(tree, path)
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            container[key] = draw(values)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(extra_keys or st.one_of(st.text(min_size=1, max_size=20), LOADED_STRINGS))] = draw(values)
        else:
            container.append(draw(values))
    return tree


# -- descriptors --------------------------------------------------------------------------------

BAD_REFS = st.sampled_from([
    "", ":", "/", "group:", ":default/x", "group:default/", "a:b:c/d/e", "Group:Default/Fraud-ML", "component:x/y/z",
    "group:default/../../admin", "user:default/alice\nuser:default/bob", "group:default/" + "x" * 300,
    "kind with spaces:default/n", "group:default/naïve", "template:default/ml-model-service",
])
UNKNOWN_KINDS = st.sampled_from(["Widget", "component", "COMPONENT", "", "Kind With Space", "Location ", "x" * 100])
API_VERSIONS = st.sampled_from(["backstage.io/v1alpha1", "plinth.dev/v1alpha1", "backstage.io/v2", "", "v1", "a/b/c"])


def demo_descriptors() -> list[dict]:
    """The shipped demo descriptors (kinds other than Location, Group and User): a valid starting point."""
    docs = []
    for path in sorted((ROOT / "catalog" / "demo").rglob("catalog-info.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") not in {"Location", "Group", "User"}:
                docs.append(doc)
    return docs


BASE_DESCRIPTORS = demo_descriptors()


@st.composite
def owned_descriptor(draw, owner: str) -> dict:
    """A valid demo descriptor under a fresh name, owned by `owner`."""
    doc = copy.deepcopy(draw(st.sampled_from(BASE_DESCRIPTORS)))
    doc["metadata"]["name"] = draw(st.from_regex(r"[a-z][a-z0-9]{2,12}(-[a-z0-9]{1,8}){0,2}", fullmatch=True))
    spec = doc.setdefault("spec", {})
    spec["owner"] = owner
    for key in ("system", "consumesFeatures", "trainedOn", "dependsOn", "providesApis", "consumesApis", "modelCard",
                "inputs", "outputs"):
        spec.pop(key, None)  # references to other demo entities, and files beside the demo descriptor
    return doc


@st.composite
def hostile_descriptor(draw, owner: str) -> dict:
    """A descriptor taken apart: structure mutations, bad references, unknown kinds, wrong versions."""
    doc = draw(owned_descriptor(owner))
    choice = draw(st.sampled_from(["mutate", "ref", "kind", "apiVersion", "name", "valid"]))
    if choice == "mutate":
        return draw(mutated(doc))
    if choice == "ref":
        spec = doc.setdefault("spec", {})
        field = draw(st.sampled_from(["owner", "system", "dependsOn", "consumesFeatures", "subcomponentOf"]))
        ref = draw(BAD_REFS)
        spec[field] = [ref] if field in {"dependsOn", "consumesFeatures"} else ref
    elif choice == "kind":
        doc["kind"] = draw(UNKNOWN_KINDS)
    elif choice == "apiVersion":
        doc["apiVersion"] = draw(API_VERSIONS)
    elif choice == "name":
        doc["metadata"]["name"] = draw(HOSTILE_STRINGS)
    return doc


ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
    "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
)
TAGGED = st.sampled_from([
    "!!python/object/apply:os.system ['id']", "!!binary aGVsbG8=", "!local thing", "!!set {a, b}", "!!timestamp 2020-01-01",
    "!!float .nan", "!!float .inf",
])


def _dump(doc, style: str) -> str:
    if style == "json":
        return json.dumps(doc, ensure_ascii=False)
    if style == "flow":
        return yaml.safe_dump(doc, default_flow_style=True, allow_unicode=True, width=10_000)
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@st.composite
def descriptor_text(draw, owner: str) -> str:
    """A descriptor file's text: 1–3 documents (valid or hostile, YAML block or flow, or JSON), then
    perhaps a text-level hazard: duplicate keys, anchors and aliases (a bomb), explicit tags, deep
    nesting, tabs, a truncated end, control characters, a BOM, CRLF, a stray separator."""
    docs = draw(st.lists(st.one_of(owned_descriptor(owner), hostile_descriptor(owner)), min_size=1, max_size=3))
    parts = [_dump(doc, draw(st.sampled_from(["block", "block", "flow", "json"]))) for doc in docs]
    text = "---\n".join(p if p.endswith("\n") else p + "\n" for p in parts)
    hazard = draw(st.sampled_from(["none", "dup", "alias", "bomb", "tag", "deep", "tab", "cut", "control", "bom", "crlf",
                                   "separators", "scalar"]))
    if hazard == "dup":
        text = text.replace("metadata:", "metadata: {name: dup}\nmetadata:", 1)
    elif hazard == "alias":
        text = "x-shared: &shared {owner: " + owner + "}\n" + text.replace("spec:", "spec: *shared\nspec-old:", 1)
    elif hazard == "bomb":
        text = ALIAS_BOMB + text
    elif hazard == "tag":
        text = text.replace("metadata:", f"weird: {draw(TAGGED)}\nmetadata:", 1)
    elif hazard == "deep":
        text += "---\n" + "x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, draw(st.integers(40, 120)))) + "  v\n"
    elif hazard == "tab":
        text = text.replace("\n  ", "\n\t", draw(st.integers(1, 3)))
    elif hazard == "cut":
        text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
    elif hazard == "control":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(CONTROL, min_size=1, max_size=4)) + text[at:]
    elif hazard == "bom":
        text = "\ufeff" + text
    elif hazard == "crlf":
        text = text.replace("\n", "\r\n")
    elif hazard == "separators":
        text = "---\n---\n...\n" + text + "\n---\n"
    elif hazard == "scalar":
        text += "---\n" + draw(st.sampled_from(["just a string", "[1, 2, 3]", "42", "null", "~"])) + "\n"
    return text


LOCATION_TARGETS = st.one_of(
    st.sampled_from([
        "/etc/passwd", "../../../../etc/passwd", "file:///etc/passwd", "http://127.0.0.1:1/catalog-info.yaml",
        "http://169.254.169.254/latest/meta-data/", "https://localhost/x.yaml", "ftp://example.com/x.yaml",
        "gopher://x", "javascript:alert(1)", "/dev/zero", "/proc/self/environ", "\\\\server\\share\\x.yaml",
        "https://[::1]/x", "http://0x7f000001/x", "   ", "https://[::1/x", "//[x/catalog-info.yaml",
    ]),
    HOSTILE_STRINGS,
)


# -- Markdown -------------------------------------------------------------------------------------

URLS = st.one_of(
    st.sampled_from([
        "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
        "&#106;avascript:alert(1)", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "vbscript:msgbox(1)",
        "//evil.example/x", "https://example.com/ok", "other.md", "../../../../etc/passwd", "guide/next.md#usage",
        "#top", "component:default/migration-docs", "/catalog/component/default/x/", "mailto:a@example.com",
        "file:///etc/passwd", "", "<>", "a b.md", "%2e%2e/%2e%2e/x", "https://[grafana/d", "//[cdn/x.png",
        "http://x]/y",
    ]),
    unicode_text(20),
)
HTML_SNIPPETS = st.sampled_from([
    "<script>window.__xss=1</script>", "<img src=x onerror=window.__xss=1>", "<svg onload=alert(1)><circle/></svg>",
    '<a href="javascript:alert(1)">x</a>', '<iframe src="https://evil.example"></iframe>',
    '<div style="background:url(javascript:alert(1))" onclick="alert(1)">x</div>', "<style>*{display:none}</style>",
    '<form action="/catalog/register/" method="post"><button>go</button></form>', "<!-- comment --><details open ontoggle=alert(1)>",
    '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>', "<base href=//evil.example/>",
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', "<object data=x.swf></object>",
    "<scr<script>ipt>alert(1)</scr</script>ipt>", "<a href=\"&#x6a;avascript:alert(1)\">x</a>", "</div></article><script>x</script>",
])


def _inline() -> st.SearchStrategy[str]:
    text = st.text(st.characters(codec="utf-8", exclude_characters="\n"), max_size=20)
    return st.one_of(
        text,
        st.builds(lambda t, u: f"[{t}]({u})", text, URLS),
        st.builds(lambda t, u: f"![{t}]({u})", text, URLS),
        st.builds(lambda u: f"<{u}>", URLS),
        st.builds(lambda t: f"**{t}** _{t}_ `{t}`", text),
        HTML_SNIPPETS,
        st.sampled_from(["&lt;script&gt;", "&#0;", "&#x110000;", "\\", "*", "_", "`", "[", "]("]),
    )


def _line() -> st.SearchStrategy[str]:
    return st.lists(_inline(), min_size=1, max_size=5).map(" ".join)


@st.composite
def _nested_list(draw) -> str:
    depth = draw(st.integers(1, 40))
    marker = draw(st.sampled_from(["-", "*", "1."]))
    return "\n".join("    " * i + f"{marker} " + draw(_line()) for i in range(depth))


@st.composite
def _table(draw) -> str:
    cols = draw(st.integers(1, 30))
    rows = draw(st.sampled_from([1, 5, 200]))
    cell = draw(_inline()).replace("|", "\\|").replace("\n", " ")
    head = "| " + " | ".join(f"c{i}" for i in range(cols)) + " |"
    sep = "|" + "|".join(draw(st.sampled_from(["---", ":--", "--:", ":-:"])) for _ in range(cols)) + "|"
    body = "\n".join("| " + " | ".join([cell] * cols) + " |" for _ in range(rows))
    return f"{head}\n{sep}\n{body}"


def _block() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda n, t: "#" * n + " " + t, st.integers(1, 7), _line()),
        _line(),
        _nested_list(),
        _table(),
        st.builds(lambda d, t: ">" * d + " " + t, st.integers(1, 60), _line()),
        st.builds(lambda lang, t, close: f"```{lang}\n{t}\n" + ("```" if close else ""),
                  st.sampled_from(["", "python", "html", "nonexistent-lexer", "js\" onload=\"x"]), _line(), st.booleans()),
        st.builds(lambda kind, t: f'!!! {kind} "{t}"\n    {t}', st.sampled_from(["note", "warning", "x\" onclick=\"y"]),
                  _line()),
        HTML_SNIPPETS,
        st.builds(lambda u: f"[ref]: {u}\n\n[use it][ref]", URLS),
        st.builds(lambda t: f"---\ntitle: {t}\n---\n", st.sampled_from(["x", "&a [1]", "!!python/object:os.system x", "{"])),
    )


MARKDOWN = st.lists(_block(), min_size=1, max_size=8).map("\n\n".join)


# -- search queries -------------------------------------------------------------------------------

FTS_TOKENS = st.sampled_from([
    "AND", "OR", "NOT", "NEAR", "NEAR(a b, 2)", "(", ")", '"', "'", "*", "^", "+", "-", ":", "{", "}", "[", "]",
    "name:", "title:", "body:", "kind:", "owner:", "tag:", "lifecycle:", "type:", "-kind:model", "kind:model",
    "tag:pii", "owner:group:default/fraud-ml", "fraud", "detector", "fraud-detector", "fraud*", '"card transactions"',
    "--", "/*", "*/", ";", "\\", "%", "_", "\x00", "🚀", "数据", "données", "SELECT * FROM search_fts", "' OR '1'='1",
    "UNION SELECT", "rank", "bm25(search_fts)", "MATCH", "||", "&&", "!", "~fraud", "@@", "<->", "to_tsquery(",
])
SEARCH_QUERIES = st.one_of(
    st.lists(st.one_of(FTS_TOKENS, unicode_text(12)), max_size=12).map(" ".join),
    st.lists(FTS_TOKENS, max_size=20).map("".join),
    HUGE_STRINGS.map(lambda s: s[:5000]),
    st.builds(lambda t: (t + " ") * (5000 // (len(t) + 1)), FTS_TOKENS),
    LOADED_STRINGS,
    unicode_text(200),
)
