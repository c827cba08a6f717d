"""How much of a long document is searched: the first BODY_CHARS (100,000) characters of its body, on
both backends alike (docs/search.md); the snippet's own scan of the first 32,000 is no search bound."""

from __future__ import annotations

import pytest

from portal.search import index, selectors
from portal.search.backends.base import BODY_CHARS, EXCERPT_SCAN
from portal.search.registry import Document

pytestmark = pytest.mark.django_db
KEY = "doc:long/page"


def _body(words_at: dict[int, str], size: int) -> str:
    """Filler of `size` characters with each word placed at its offset (between spaces)."""
    text = list(("lorem ipsum " * (size // 12 + 1))[:size])
    for at, word in words_at.items():
        text[at - 1: at + len(word) + 1] = f" {word} "
    return "".join(text)


@pytest.fixture
def long_page(users):
    body = _body({10: "earlyquokka", EXCERPT_SCAN + 8_000: "middlequokka",
                  BODY_CHARS - 100: "lastquokka", BODY_CHARS + 5_000: "beyondquokka"}, BODY_CHARS + 20_000)
    doc = Document(key=KEY, kind="doc", kind_label="Docs", name="long page", url="/docs/long/", title="Long page",
                   description="A very long page", body=body)
    index.update("catalog", changed=[KEY], documents=[doc])
    selectors.clear_cache()
    yield users
    selectors.clear_cache()


@pytest.mark.parametrize(("word", "found"), [("earlyquokka", True), ("middlequokka", True),
                                             ("lastquokka", True), ("beyondquokka", False)])
def test_the_first_body_chars_are_searched_and_no_more(long_page, word, found):
    hits = selectors.search(long_page["grace"], word, limit=5).hits
    assert (KEY in [h.key for h in hits]) is found


def test_a_match_past_the_snippet_scan_is_found_with_the_description_as_snippet(long_page):
    hit = next(h for h in selectors.search(long_page["grace"], "middlequokka", limit=5).hits if h.key == KEY)
    assert "A very long page" in str(hit.snippet)
