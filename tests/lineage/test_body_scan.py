"""The raw-body scan that runs before the JSON parser (`events._deepest`, `events._suspect`): the nesting
count must equal the parsed document's depth whatever the strings hold (brackets, escaped quotes and
backslashes), and the credential search must flag exactly what the single regex it replaced flagged."""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.lineage import events

# Strings full of what could fool a bracket count: quotes, backslashes, brackets, escapes.
_tricky = st.text(alphabet=st.sampled_from(list('[]{}"\\/u:@ab?&=\n')), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _tricky,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_tricky, inner, max_size=4),
    max_leaves=40,
)
# The pattern `_suspect` replaced (one regex of alternatives), kept here as the reference.
_REFERENCE = re.compile(rb"\\u|\\/|://[^/\"\s]*@|[?&;](?i:password|passwd|pwd|secret|token|access_?key|"
                        rb"secret_?key|sig|signature|sas|api_?key)=")


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


@given(_json, st.booleans())
def test_the_nesting_count_matches_the_parsed_depth(value, ascii_only):
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert events._deepest(body) == _depth(value)


@given(_json, st.data())
def test_a_body_cut_off_anywhere_is_refused_as_not_json_never_an_error(value, data):
    """A truncated request (a string left open, say) is an EventInvalid naming the body, never another
    exception: a quote with no partner once made the bracket count raise KeyError (a 500)."""
    body = json.dumps([{"v": value}]).encode()
    cut = body[:data.draw(st.integers(min_value=1, max_value=len(body) - 1))]
    with pytest.raises(events.EventInvalid) as refused:
        events.parse_body(cut)
    assert refused.value.path == "body"


def test_an_unterminated_string_counts_no_brackets_after_its_quote():
    assert events._deepest(b'[{"a": "x') == 2
    assert events._deepest(b'[{"a": "[[[[{{{{') == 2
    assert events._deepest(b'"') == 0


_NINETEEN_DIGITS = re.compile(rb"[0-9]{19}")  # the pattern `long_digits` replaced, kept as the reference


@given(st.binary(max_size=60) | st.text(alphabet=st.sampled_from(list("0123456789 .-e\"٣")), max_size=60)
       .map(str.encode))
def test_the_long_digit_search_finds_what_the_regex_found(body):
    assert events.long_digits(body) == (_NINETEEN_DIGITS.search(body) is not None)


def test_the_long_digit_search_at_the_edges():
    assert events.long_digits(b"1234567890123456789") and events.long_digits(b'{"a": 12345678901234567890}')
    assert not events.long_digits(b"123456789012345678 9") and not events.long_digits(b"")
    assert not events.long_digits("١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦٧٨٩".encode())  # only ASCII digits make an integer


def test_escaped_backslashes_and_quotes_do_not_end_a_string_early():
    body = rb'{"a": "\\", "b": "\"[[[", "c": "\\\"{{", "d": [["\\\\"]]}'
    assert events._deepest(body) == 3 == _depth(json.loads(body))


@given(st.binary(max_size=80) | st.text(alphabet=st.sampled_from(list("pP:/@?&;=\\u sigtokenSAS")), max_size=40)
       .map(str.encode))
def test_the_credential_search_flags_what_the_single_regex_flagged(body):
    assert events._suspect(body) == (_REFERENCE.search(body) is not None)


def test_the_credential_search_on_typical_bodies():
    assert events._suspect(b'{"namespace": "postgres://etl:pw@db:5432"}')
    assert events._suspect(b'{"url": "https://x/y?sig=abc"}')
    assert events._suspect(b'{"name": "caf\\u00e9"}')
    assert not events._suspect(b'{"namespace": "postgres://db:5432", "owner": "a@b.org"}')


# -- orjson where it reads exactly what json reads (events._loads, the stored payload) -------------------

# Values that tell the parsers apart: integers beyond 64 bits, floats (NaN, infinities, -0.0, 1e16),
# lone surrogates, non-ASCII text, control characters, and bool/int/float of equal value (True == 1 == 1.0).
_awkward_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=8) | st.sampled_from(
    ["\ud800", "a\udfffb", "é", "\U0001f600", "\x01", "\x7f", "1e400", "NaN"])
_number = (st.integers(min_value=-(2 ** 70), max_value=2 ** 70) | st.floats(allow_nan=True, allow_infinity=True)
           | st.sampled_from([0, 1, -0.0, 1.0, True, False, 1e16, 1e-5, 2 ** 63, -(2 ** 63) - 1, 2 ** 64 - 1]))
_any_json = st.recursive(
    st.none() | st.booleans() | _number | _awkward_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_awkward_text, inner, max_size=4),
    max_leaves=30,
)


def _typed(value):
    """The value with every scalar's type made part of it (True == 1 == 1.0 in Python; NaN != NaN)."""
    if isinstance(value, dict):
        return ("dict", [(k, _typed(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [_typed(v) for v in value])
    if isinstance(value, float):
        return ("float", repr(value))
    return (type(value).__name__, value)


@given(_any_json, st.booleans(), st.booleans())
def test_the_body_parses_exactly_as_json_reads_it(value, ascii_only, as_array):
    document = [{"v": value}] if as_array else {"v": value}
    body = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(body)
    except ValueError:
        return  # json itself refuses it (a lone surrogate written raw): covered below
    if _has_nan_or_infinity(expected):  # not JSON (RFC 8259), and jsonb cannot store it: refused
        with pytest.raises(events.EventInvalid, match="not JSON"):
            events.parse_body(body)
        return
    parsed, _, facts = events.parse_body(body)
    assert _typed(parsed) == _typed(expected if as_array else [expected])
    if facts.strict:  # what orjson read, orjson writes: the stored text reads back as the same value
        checked_json = events.orjson.dumps(parsed).decode()
        assert _typed(json.loads(checked_json)) == _typed(parsed)


def _has_nan_or_infinity(value) -> bool:
    if isinstance(value, dict):
        return any(_has_nan_or_infinity(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan_or_infinity(v) for v in value)
    return isinstance(value, float) and not math.isfinite(value)


def test_bodies_orjson_refuses_take_json_s_answer():
    """A lone surrogate, a byte-order mark and UTF-16 are read as json reads them; integers beyond 64 bits
    stay exact integers (orjson would make them floats); NaN, Infinity and 1e400 are refused (not JSON)."""
    for body in (b'{"a": NaN}', b'{"a": -Infinity}', b'{"a": 1e400}', b'[{"a": [1, NaN]}]'):
        with pytest.raises(events.EventInvalid, match="not JSON"):
            events.parse_body(body)
    big = 123456789012345678901234567890
    for body, expected in [(b'{"a": "\\ud800"}', "\ud800"),
                           (b'\xef\xbb\xbf{"a": 1}', 1), ('{"a": 2}'.encode("utf-16"), 2),
                           (f'{{"a": {big}}}'.encode(), big), (b'{"a": -9223372036854775809}', -9223372036854775809)]:
        [parsed], _, facts = events.parse_body(body)
        assert not facts.strict
        assert _typed(parsed["a"]) == _typed(expected)
    [parsed], _, facts = events.parse_body(b'{"a": 922337203685477580, "b": 1.5, "c": "\\u00e9"}')
    assert facts.strict and parsed == {"a": 922337203685477580, "b": 1.5, "c": "é"}
    with pytest.raises(events.EventInvalid, match="not JSON"):
        events.parse_body(b'{"a": }')


@given(st.text(max_size=20))
def test_names_are_refused_for_control_characters_exactly_as_the_regex_decides(value):
    """events._name's isprintable() shortcut refuses exactly what the control-character regex refuses."""
    expected = bool(value.strip()) and events._CONTROL.search(value) is None and len(value) <= events.MAX_NAME
    try:
        events._name(value, "job", "name")
    except events.EventInvalid:
        assert not expected
    else:
        assert expected
