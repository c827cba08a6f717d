"""The query parser: never fails, and turns any input into tokens that carry no FTS syntax."""

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.search.query import MAX_QUERY_CHARS, MAX_TERM_CHARS, MAX_TERMS, parse, tokens, words


def test_words_phrases_filters_and_exclusions():
    """Words, quoted phrases, known field filters and -exclusions are told apart."""
    q = parse(
        'fraud detec "card transactions" kind:model owner:group:default/fraud-ml tag:PII -deprecated -kind:dataset'
    )
    assert q.terms == ["fraud", "detec"]
    assert q.phrases == [["card", "transactions"]]
    assert q.filters == {"kind": ["model"], "owner": ["fraud-ml"], "tag": ["pii"]}
    assert q.excluded == ["deprecated"]
    assert q.excluded_filters == {"kind": ["dataset"]}


def test_names_with_dashes_are_words():
    """A name like fraud-detector matches as its words."""
    assert parse("fraud-detector").terms == ["fraud", "detector"]
    assert words("Fraud_Detector v2.1") == ["fraud", "detector", "v2", "1"]


@pytest.mark.parametrize(
    "text",
    [
        '"',
        '"""',
        "*",
        "NEAR(a b)",
        "a ^ b",
        "((()))",
        ":",
        "kind:",
        "-",
        "--",
        "a AND OR NOT b",
        "'; DROP TABLE search_searchdocument; --",
        "\x00\x01",
        "🚀🔥",
        "   ",
        "",
        None,
        "x" * 10_000,
        "unknown:field",
        '-""',
        'title:"unterminated',
    ],
)
def test_any_input_parses(text):
    """Nothing raises, and every token is a plain run of letters and digits."""
    q = parse(text)
    for token in q.terms + q.excluded + [w for p in q.phrases for w in p]:
        assert token.isalnum(), token


def test_limits_are_explained():
    """Very long queries are cut, and the user is told."""
    q = parse(" ".join(f"w{i}" for i in range(500)))
    assert len(q.terms) == MAX_TERMS
    assert any(str(MAX_QUERY_CHARS) in n for n in q.notes)


def test_unknown_fields_are_words():
    """`NEAR:` or `http:` are not filters: their text is searched."""
    q = parse("near:x status:prod")
    assert q.filters == {}
    assert q.terms == ["near", "x", "status", "prod"]


def test_unicode_words_survive():
    """Non-Latin words are searchable; emoji are not words."""
    assert parse("données 数据 🚀").terms == ["données", "数据"]


def _regex_words(text: str) -> list[str]:
    """`words` as the regex defines it (its only path before the ASCII shortcut)."""
    normal = unicodedata.normalize("NFKC", text).lower().replace("_", " ")
    return [w for w in re.findall(r"\w+", normal) if len(w) <= MAX_TERM_CHARS]


@settings(max_examples=500, deadline=None, database=None)
@given(st.one_of(st.text(st.characters(max_codepoint=127)), st.text()))
def test_the_ascii_shortcut_finds_the_regex_words(text):
    assert words(text) == _regex_words(text)


@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
@settings(max_examples=500, deadline=None)
def test_ascii_tokens_are_the_regex_words(text):
    """The ASCII fast path (one byte table) finds exactly the words the general path's regex finds:
    lowercased runs of letters and digits, `_` and everything else separating them."""
    assert tokens(text) == re.findall(r"\w+", unicodedata.normalize("NFKC", text).lower().replace("_", " "))
