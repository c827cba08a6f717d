"""The sandbox's cap on what a template may allocate holds for method calls too: a method of a value
(str, bytes, Markup, int, float, dict) is on an allow-list with the size of its result computed before it
runs, and every call's result is checked once made, so a chain of calls cannot grow past MAX_RESULT
(review finding: `('x'*999999).encode().hex()…` built 64 M characters, `(1).to_bytes(5e7)` 50 MB)."""

from __future__ import annotations

import time
import tracemalloc

import pytest

from portal.scaffolder import expressions

BIG = "('x' * 999999)"
CHAIN = BIG + ".encode().hex().encode().hex().encode().hex().encode().hex().encode().hex().encode().hex()"


def refused(run, *args):
    """Run `run(*args)`: it must be refused by the sandbox, at once, without allocating more than a
    few times MAX_RESULT (traced)."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(expressions.ExpressionError, match="blocked by the template sandbox") as caught:
            run(*args)
        elapsed, peak = time.monotonic() - started, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 2, elapsed
    assert peak < 12 * expressions.MAX_RESULT, peak
    return str(caught.value)


@pytest.mark.parametrize(
    ("expression", "named"),
    [
        (CHAIN + "|length", "bytes.hex()"),  # hidden from the final size check by |length
        (BIG + ".encode().hex()|length", "bytes.hex()"),
        ("(1).to_bytes(50000000, 'big')|length", "int.to_bytes()"),
        ("(1).to_bytes(length=10**9)|length", "int.to_bytes()"),
        (BIG + ".encode('unicode_escape')|length", "str.encode()"),
        (BIG + ".encode('utf-16')|length", "str.encode()"),
        ("('é' * 600000).encode()|length", "str.encode()"),
        ("('ﬃ' * 500000).upper()|length", "str.upper()"),
        ("('x'|safe).center(10**8)|length", "Markup.center()"),  # Markup's methods are Python methods
        ("('x'|e).replace('x', '\"' * 300000)|length", "Markup.replace()"),  # measured escaped: &#34;
        ("('x'|safe).escape('<' * 300000)|length", "Markup.escape()"),
        ("{}.fromkeys(range(100000), 'x' * 100)|length", "dict.fromkeys()"),
        ("dict(a=" + BIG + ", b=" + BIG + ")|length", "dict()"),  # caught once made
        ("'x'.maketrans(" + BIG + ", " + BIG + ")|length", "str.maketrans()"),
    ],
)
def test_calls_are_refused_beyond_the_cap(expression, named):
    message = refused(expressions.evaluate, expression, {})
    assert named in message


def test_a_skeleton_file_is_held_to_the_same_cap():
    message = refused(expressions.render_string, "size: ${{ " + CHAIN + "|length }}\n", {})
    assert "bytes.hex()" in message


def test_a_method_the_sandbox_does_not_know_is_refused():
    """Deny by default: a method of a str (here a subclass's own) that is not on the allow-list."""

    class Text(str):
        def grow(self, n):
            return self * n

    with pytest.raises(expressions.ExpressionError, match=r"Text\.grow\(\) is not allowed in a template"):
        expressions.evaluate("v.grow(10)", {"v": Text("x")})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'Ab'.lower() ~ 'ab'.upper() ~ 'ab'.title()", "abABAb"),
        ("'a-b'.split('-')", ["a", "b"]),
        ("'a\\nb'.splitlines()", ["a", "b"]),
        ("'k=v'.partition('=')", ("k", "=", "v")),
        ("'x'.encode().hex()", "78"),
        ("'é'.encode('utf-8')|length", 2),
        ("(258).to_bytes(2, 'big').hex()", "0102"),
        ("(1.5).hex()", "0x1.8000000000000p+0"),
        ("'  pad '.strip().zfill(5)", "00pad"),
        ("'a'.maketrans('a', 'b')", {97: 98}),
        ("{}.fromkeys(['a', 'b'], 0)", {"a": 0, "b": 0}),
        ("('x ' * 400000).split()|length", 400000),  # a million characters' worth, allowed
        (BIG + ".encode()|length", 999999),
        ("(" + BIG + ").encode().decode()|length", 999999),
        ("('😀' * 250000).encode()|length", 1000000),
    ],
)
def test_ordinary_calls_still_work(expression, expected):
    assert expressions.evaluate(expression, {}) == expected
