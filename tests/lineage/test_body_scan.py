"""The raw-body scan that runs before the JSON parser (`events._deepest`, `events._suspect`): the nesting
count must equal the parsed document's depth whatever the strings hold (brackets, escaped quotes and
backslashes), and the credential search must flag exactly what the single regex it replaced flagged."""

from __future__ import annotations

import json
import re

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
