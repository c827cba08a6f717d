"""Rendering speed fixes keep the output: the linear table test answers as Markdown's, the shared Pygments
formatter highlights as Pygments' own, a model card skips the search text, and the facts of a card not
built yet are cached by its content hash. Timings are in `manage.py techdocs bench-card`, not here."""

import markdown
import pytest
from django.core.cache import cache
from markdown.extensions.tables import TableProcessor
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name

from portal.techdocs import bench, modelcards, rendering, selectors, services
from tests.techdocs.test_model_cards import register_model

BLOCKS = [
    "a", "a\nb", "| a | b |\n|---|:-:|\n| 1 | 2 |", "a | b\n--- | ---\n1 | 2", "|a\n|-\n|x", "|a\n|-\nx",
    "|a\nb|\n|-", "a|\n-|\nx|", "|a\n|b\n|c", "| x\n|:-\nfoo", "a\\|b\n-|-", "`a|b` | c\n-|-", "| one |\n| --- |",
    "# h\n# i\n# j", "|a|b|\n|-|-|-|", "|a|b|\n|x|y|", "|a|\n", "| a |\n|\n", " | a | b | \n | - | - | ",
    "a | b\n:-- | --:\n\n", "|a\\|\n|-\\|", "a\n|", "x" * 50 + "\n|" * 3,
]


@pytest.mark.parametrize("block", BLOCKS)
def test_the_linear_table_test_answers_as_markdowns(block):
    """Same answer, border and separator as the tables extension's own test, on tables and non-tables."""
    md = rendering.new_markdown()
    ours = md.parser.blockprocessors["table"]
    assert isinstance(ours, rendering._LinearTableProcessor)
    theirs = TableProcessor(md.parser, {"use_align_attribute": False})
    assert ours.test(None, block) == theirs.test(None, block)
    assert (ours.border, list(ours.separator)) == (theirs.border, list(theirs.separator))


class _Rows(str):
    """A block that counts the rows its splits produce (how much of it the table test reads)."""

    pieces = 0

    def split(self, sep=None, maxsplit=-1):
        parts = super().split(sep, maxsplit)
        type(self).pieces += len(parts)
        return parts


def test_the_table_test_reads_two_rows_not_the_whole_block():
    """Markdown re-tests the rest of a block after each heading split off its front: reading every row
    each time made `"# a\\n" * 6000` take 14 s."""
    _Rows.pieces = 0
    block = _Rows("# a\n" * 10_000)
    assert rendering.new_markdown().parser.blockprocessors["table"].test(None, block) is False
    assert _Rows.pieces <= 4


def test_tables_and_headings_render_as_before():
    text = "# a\n# a\n## b\n| x | y |\n|:--|--:|\n| 1 | 2 |\n\n|one\n|-\n|1\n\nnot | a\ntable\n"
    html = rendering.render_markdown(text, rendering.LinkPolicy()).html
    stock = markdown.markdown(text, extensions=["tables", "toc"], output_format="html")
    assert html == rendering.sanitize(stock, rendering.LinkPolicy(), [])


@pytest.mark.parametrize("lang", ["python", "yaml", "json", "text"])
def test_the_shared_formatter_highlights_as_pygments(lang):
    source = 'def f(x: int) -> str:\n    """Doc."""\n    return {"a": [1, 2.5, None]}  # note\n'
    lexer = get_lexer_by_name(lang)
    ours = highlight(source, lexer, rendering._SharedStyleHtmlFormatter(cssclass="codehilite", wrapcode=True))
    assert ours == highlight(source, lexer, HtmlFormatter(cssclass="codehilite", wrapcode=True))
    assert rendering._SharedStyleHtmlFormatter().ttype2class is not rendering._SharedStyleHtmlFormatter().ttype2class


def test_a_model_card_render_skips_the_search_text_only():
    text = bench.card_text("realistic", 20_000)
    full = rendering.render_markdown(text, rendering.LinkPolicy())
    card = rendering.render_markdown(text, rendering.LinkPolicy(), with_text=False)
    assert card.text == "" and full.text.startswith("owners: [fraud-ml] Card Intended use")
    assert (card.html, card.toc, card.title, card.problems) == (full.html, full.toc, full.title, full.problems)


@pytest.mark.django_db
def test_facts_of_a_card_not_built_yet_are_cached_by_its_content(tmp_path, demo_org, client):
    """The model page asks for the facts of an unbuilt card more than once (panel, tab, governance):
    the card is rendered once per content, and an edit is a new key, never stale facts."""
    entity = register_model(tmp_path, "cached", "card.md", "# Card\n\n## Metrics\nAUC\n")
    first = selectors.model_card_facts(entity)
    key = selectors.card_facts_key(modelcards.read_card(entity).source_hash)
    assert first["sections"] == ["Metrics"] and cache.get(key) == first
    (tmp_path / "cached" / "card.md").write_text("# Card\n\n## Intended use\nFraud.\n\n## Metrics\nAUC\n")
    assert selectors.model_card_facts(entity)["sections"] == ["Intended use", "Metrics"]
    client.force_login(demo_org["users"]["alice"])
    page = client.get("/catalog/model/default/cached/").content.decode()
    assert "2 sections" in page
    services.model_card_build(entity=entity)  # the stored build wins over the cache
    (tmp_path / "cached" / "card.md").write_text("# Card\n")
    assert selectors.model_card_facts(entity)["sections"] == ["Intended use", "Metrics"]
