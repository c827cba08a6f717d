"""Code blocks find their Pygments lexer once per language, not once per block (Pygments walks its lexer
table, and its plugin entry points for an unknown language, on every lookup), with the same output."""

import uuid

import pygments.lexers
from markdown.extensions import codehilite

from portal.techdocs import rendering


def _card(lang: str, blocks: int = 40) -> str:
    langs = ["python", "PYTHON", "yaml", "", lang, "text", "py3"]
    return "\n\n".join(f"```{langs[i % len(langs)]}\nx = {i}  # [a](b)\n```" for i in range(blocks))


def test_code_blocks_highlight_as_with_pygments_own_lookup(monkeypatch):
    text = _card(f"nosuchlang{uuid.uuid4().hex[:6]}")
    ours = rendering.render_markdown(text, rendering.LinkPolicy()).html
    monkeypatch.setattr(codehilite, "get_lexer_by_name", pygments.lexers.get_lexer_by_name)
    theirs = rendering.render_markdown(text, rendering.LinkPolicy()).html
    assert ours == theirs
    assert 'class="codehilite"' in ours


def test_an_unknown_language_is_looked_up_once_per_render(monkeypatch):
    calls = []
    real = pygments.lexers.get_lexer_by_name.__globals__["find_plugin_lexers"]

    def counted():
        calls.append(1)
        return real()

    # pygments.lexers replaces its module object on import: its functions read the original's globals
    monkeypatch.setitem(pygments.lexers.get_lexer_by_name.__globals__, "find_plugin_lexers", counted)
    rendering.render_markdown(_card(f"nosuchlang{uuid.uuid4().hex[:6]}", blocks=70), rendering.LinkPolicy())
    assert len(calls) <= 1  # Pygments' own lookup: once per block of the unknown language (10 here)
