"""Markdown rendering fidelity and the sanitiser, without the database."""

import pytest

from portal.techdocs import rendering


class Links(rendering.LinkPolicy):
    def link(self, target, fragment):
        return f"/docs/x/{target}" + rendering.prefix_fragment(fragment)

    def image(self, target):
        return f"/docs/x/_assets/{target}"


def render(text: str):
    return rendering.render_markdown(text, Links())


SAMPLE = '''# Title

Intro with **bold** and `code`.

## Install it

| Name | Default |
|------|--------:|
| ttl  | 24h     |

```python
def score(x: int) -> float:
    return x / 2
```

!!! warning "Careful"
    Features expire.

### Details

Text.
'''


def test_headings_tables_code_admonitions_and_toc():
    """Headings get prefixed ids, tables and highlighted code and admonitions survive sanitising, TOC nests."""
    out = render(SAMPLE)
    assert '<h1 id="doc-title">Title</h1>' in out.html
    assert '<h2 id="doc-install-it">' in out.html
    assert "<table>" in out.html and "<th" in out.html and 'style="text-align:right"' in out.html
    assert '<div class="codehilite">' in out.html and '<span class="k">def</span>' in out.html
    assert '<div class="admonition warning">' in out.html and '<p class="admonition-title">Careful</p>' in out.html
    assert out.title == "Title"
    assert out.toc[0]["name"] == "Title"
    assert [c["id"] for c in out.toc[0]["children"]] == ["install-it"]
    assert out.toc[0]["children"][0]["children"][0]["name"] == "Details"
    assert "Features expire." in out.text and "<" not in out.text


def test_relative_links_and_images_go_through_the_policy():
    out = render("[next](guide/next.md#usage) ![diagram](img/a.png) [top](#title) [ext](https://example.com/x)")
    assert 'href="/docs/x/guide/next.md#doc-usage"' in out.html
    assert 'src="/docs/x/_assets/img/a.png"' in out.html
    assert 'href="#doc-title"' in out.html
    assert 'href="https://example.com/x"' in out.html and 'rel="noopener noreferrer nofollow"' in out.html


@pytest.mark.parametrize("markdown_text, forbidden", [
    ("<script>window.__xss=1</script>", "<script"),
    ('<img src="x" onerror="window.__xss=1">', "onerror"),
    ("[click](javascript:window.__xss=1)", "javascript:"),
    ("[click](JaVaScRiPt:alert(1))", "alert"),
    ("[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)", "data:"),
    ("![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)", "data:"),
    ('<svg onload="alert(1)"><circle/></svg>', "<svg"),
    ('<object data="evil.swf"></object>', "<object"),
    ('<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>', "<iframe"),
    ('<a href="vbscript:msgbox(1)">x</a>', "vbscript"),
    ('<form action="javascript:alert(1)"><button>go</button></form>', "<form"),
    ('<base href="https://evil.example/">', "<base"),
    ('<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', "<meta"),
    ("<style>body{background:url(javascript:alert(1))}</style>", "<style"),
    ('<math><mi xlink:href="javascript:alert(1)">x</mi></math>', "javascript"),
    ('<div style="background:url(javascript:alert(1))">x</div>', "style="),
    ('<a href="#" onclick="alert(1)">x</a>', "onclick"),
    ("<details open ontoggle=alert(1)><summary>x</summary></details>", "ontoggle"),
    ('<p class="alert alert-error msg">spoof</p>', "alert-error"),
    ('<input autofocus onfocus="alert(1)">', "<input"),
    ('<a href="&#106;avascript:alert(1)">x</a>', "alert"),
    ('<img src="https://evil.example/track.png">', "evil.example"),
])
def test_xss_corpus_is_neutralised(markdown_text, forbidden):
    """Each payload is rendered by Markdown, then must come out of nh3 without its active part."""
    out = render(f"Before\n\n{markdown_text}\n\nAfter")
    assert forbidden.lower() not in out.html.lower(), out.html
    assert "After" in out.html


@pytest.mark.parametrize("markdown_text", [
    "![x](/\\evil.example/a.png)",
    "<img src='/\\evil.example/a.png'>",
    "<img src='\\\\evil.example/a.png'>",
    "<img src='/&#9;/evil.example/a.png'>",
    "<img src='https:\\\\evil.example/a.png'>",
])
def test_a_backslash_or_tab_after_the_slash_is_another_site_for_an_image(markdown_text):
    r"""Browsers read `\` as `/` and drop tabs: `/\evil` is `//evil`, an off-site image, not a portal path."""
    out = render(markdown_text)
    assert "evil" not in out.html, out.html
    assert any("External image removed" in p for p in out.problems), out.problems


@pytest.mark.parametrize("markdown_text", [
    "[x](/\\evil.example)",
    "<a href='/\\evil.example'>x</a>",
    "<a href='\\\\evil.example'>x</a>",
    "<a href='/&#10;/evil.example'>x</a>",
])
def test_a_backslash_after_the_slash_is_an_external_link_not_a_portal_path(markdown_text):
    """Kept, as `//evil.example` (what the browser follows) with the external links' rel, never as a
    portal path the reader would trust."""
    out = render(markdown_text)
    assert 'href="//evil.example"' in out.html and 'rel="noopener noreferrer nofollow"' in out.html, out.html
    assert "\\" not in out.html


def test_backslashes_in_relative_links_and_queries():
    out = render("[a](guide\\next.md) [b](/search/?q=a\\b)")
    assert 'href="/docs/x/guide/next.md"' in out.html
    assert 'href="/search/?q=a\\b"' in out.html


def test_ids_are_prefixed_so_documents_cannot_clobber_the_portal_dom():
    out = render('<h2 id="global-search">x</h2>\n\n<div id="main">y</div>')
    assert 'id="global-search"' not in out.html and 'id="doc-global-search"' in out.html
    assert 'id="main"' not in out.html


def test_front_matter_is_parsed_safely():
    front, body, error = rendering.split_front_matter("---\ntitle: Hello\ntags: [a, b]\n---\n# Body\n")
    assert front == {"title": "Hello", "tags": ["a", "b"]} and body.startswith("# Body") and error is None
    _, _, error = rendering.split_front_matter("---\ntitle: [unclosed\n---\n# Body\n")
    assert error and error.startswith("Malformed YAML front matter")
    _, _, error = rendering.split_front_matter("---\n!!python/object/apply:os.system ['true']\n---\nx")
    assert error and "Malformed" in error
    _, _, error = rendering.split_front_matter("---\ntitle: never closed\n")
    assert error and "no closing" in error
    _, _, error = rendering.split_front_matter("---\n- a list\n---\nx")
    assert error == "Front matter must be a mapping of keys to values."


def test_search_text_joins_inline_elements_and_separates_blocks():
    """The indexed text has no spaces the page does not show: inline elements (code, strong, em, links)
    join the words around them, block elements (headings, paragraphs, list items, cells) separate words."""
    out = render("# Gate\n\nIt stops the request (**blocked**) and says why: see `discovery.py`, and "
                 "[Feast](https://feast.dev)'s *docs*.\n\n- one\n- two\n\n| a | b |\n|---|---|\n| x | y |\n\nEnd")
    assert "Gate It stops the request (blocked) and says why: see discovery.py, and Feast's docs." in out.text
    assert "one two" in out.text and "a b x y End" in out.text
    assert rendering.plain_text("<p>a&amp;b <code>x&lt;y</code></p><p>next<br>line</p>") == "a&b x<y next line"
    assert rendering.plain_text('<a title="1 > 0" href="#">link</a>ed') == "linked"
