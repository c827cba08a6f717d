"""Hostile and ordinary YAML through load_documents."""

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.descriptors.errors import DescriptorError
from catalog.descriptors.loader import load_documents


def billion_laughs(levels=9, width=10):
    text = 'l0: &l0 ["lol"]\n'
    for i in range(1, levels + 1):
        text += f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]\n"
    return text


def test_multi_document_with_lines_and_empty_documents():
    docs, errors = load_documents("---\n# c\na: 1\nb:\n  c: [x, y]\n---\n---\nd: 2\n", "f.yaml")
    assert errors == []
    assert [(d.index, d.line) for d in docs] == [(0, 3), (2, 8)]
    assert docs[0].field_lines == {"a": 3, "b": 4, "b.c": 5, "b.c[0]": 5, "b.c[1]": 5}
    assert docs[0].source == "f.yaml"


def test_yaml_1_2_scalars_stay_json_compatible():
    (doc,), _ = load_documents("d: 2024-01-01\nn: no\ny: yes\nt: true\no: 0o17\nx: 0x1f\nf: 1.5\n", "s")
    assert doc.data == {"d": "2024-01-01", "n": "no", "y": "yes", "t": True, "o": 15, "x": 31, "f": 1.5}


def test_python_tags_rejected_with_line():
    docs, errors = load_documents("a: 1\nb: !!python/object/apply:os.system ['echo hi']\n", "s")
    assert docs == []
    assert errors[0].line == 2 and "!!python/object/apply:os.system" in errors[0].message


def test_non_standard_tags_rejected():
    for tag in ("!!binary aGk=", "!!set {a}", "!!timestamp 2020-01-01", "!custom x", "!!omap [a: 1]"):
        docs, errors = load_documents(f"a: {tag}\n", "s")
        assert docs == [] and "is not allowed" in errors[0].message, tag


def test_one_bad_document_does_not_stop_the_others():
    text = "a: 1\na: 2\n---\n- list\n---\nok: !!python/name:os.system\n---\nfine: 1\n"
    docs, errors = load_documents(text, "s")
    assert [d.data for d in docs] == [{"fine": 1}]
    assert [e.line for e in errors] == [2, 4, 6]
    assert "duplicate key 'a' (first defined on line 1)" in errors[0].message
    assert "not a mapping" in errors[1].message


def test_billion_laughs_rejected_quickly():
    start = time.monotonic()
    docs, errors = load_documents(billion_laughs(), "lol.yaml")
    assert time.monotonic() - start < 1
    assert docs == [] and "too many YAML nodes" in errors[0].message


def test_alias_count_and_recursive_alias():
    many = "a: &a x\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    assert "too many aliases" in load_documents(many, "s")[1][0].message
    assert "recursive alias" in load_documents("a: &a [*a]\n", "s")[1][0].message
    docs, errors = load_documents("a: &a {x: 1}\nb: *a\n", "s")  # ordinary aliases are fine
    assert docs[0].data == {"a": {"x": 1}, "b": {"x": 1}} and errors == []


def test_deep_nesting_rejected_block_flow_and_through_aliases():
    block = "".join("  " * i + f"k{i}:\n" for i in range(60)) + "  " * 60 + "v\n"
    assert "nesting deeper than 50" in load_documents(block, "s")[1][0].message
    flow = "a: " + "[" * 5000 + "]" * 5000
    assert load_documents(flow, "s")[0] == []
    nested = "a: &a " + "[" * 30 + "]" * 30 + "\nb: " + "[" * 25 + "*a" + "]" * 25 + "\n"
    assert "nesting deeper than 50" in load_documents(nested, "s")[1][0].message


def test_size_cap_encoding_and_binary():
    assert "larger than 1 KiB" in load_documents("a: " + "x" * 2000, "s", max_bytes=1024)[1][0].message
    docs, errors = load_documents(b"a: \xff\xfe\n", "s")
    assert docs == [] and "not valid UTF-8" in errors[0].message
    docs, errors = load_documents(b"\x00\x01\x02binary", "s")
    assert docs == [] and len(errors) == 1
    assert load_documents(b"\xef\xbb\xbfa: 1\n", "s")[0][0].data == {"a": 1}  # BOM tolerated


def test_syntax_error_is_file_level():
    docs, errors = load_documents("a: 1\n---\nb: [1,\n", "s")
    assert docs == [] and len(errors) == 1 and errors[0].message.startswith("invalid YAML")


def test_non_finite_and_bad_explicit_values():
    assert "non-finite" in load_documents("a: .nan\n", "s")[1][0].message
    assert load_documents("a: !!int abc\n", "s")[1][0].line == 1
    assert load_documents("? [1]\n: x\n", "s")[1][0].message == "mapping keys must be scalars"


def test_node_cap():
    assert (
        "too many YAML nodes" in load_documents("a: [" + "1," * 300 + "1]", "s", max_nodes=100)[1][0].message
    )


def test_error_str_and_dict():
    err = DescriptorError("bad", "f.yaml", 3, "metadata.name")
    assert str(err) == "f.yaml:3: metadata.name: bad"
    assert str(DescriptorError("bad")) == "bad"
    assert err.as_dict() == {"message": "bad", "source": "f.yaml", "line": 3, "field": "metadata.name"}


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(), st.binary(), st.text(alphabet="&*[]{}!:-#|>'\"\n ?,ab1%@`")))
def test_arbitrary_input_only_ever_raises_descriptor_error(text):
    docs, errors = load_documents(text, "fuzz")
    assert all(isinstance(e, DescriptorError) for e in errors)
    assert all(isinstance(d.data, dict) for d in docs)


# -- the fast path's structure check ---------------------------------------------------------------
def _walk_reference(value, limits, depth=0, count=None):
    """The plain recursive definition the iterative `_walk_ok` must agree with."""
    import math

    count = count if count is not None else [0]
    count[0] += 1
    if depth > limits.max_depth or count[0] > limits.max_nodes:
        return False
    if isinstance(value, dict):
        return all(isinstance(k, str) and _walk_reference(v, limits, depth + 1, count) for k, v in value.items())
    if isinstance(value, list):
        return all(_walk_reference(v, limits, depth + 1, count) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=3) | st.floats() | st.dates()
_trees = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=2) | st.integers(), inner, max_size=4),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(_trees, st.integers(1, 6), st.integers(1, 40))
def test_iterative_structure_check_agrees_with_the_recursive_definition(tree, max_depth, max_nodes):
    from catalog.descriptors.loader import Limits, _walk_ok

    limits = Limits(10**6, max_depth, 100, max_nodes)
    assert _walk_ok(tree, limits) == _walk_reference(tree, limits)


# -- the fast path agrees with the careful loader --------------------------------------------------
_lines = st.sampled_from([
    "a: 1", "b: [x, y]", "c:\n  d: 2", "# a comment", "  # indented comment", "", " ", "---", "--- ", "---\t",
    "----", "---x", "e: '---'", "f: 0 3 * * *", "g: '%'", "h: a...b", "...", "%YAML 1.2", "i: &j 1", "k: *j",
    "l: [[[[[[[[1]]]]]]]]", "m: !!str 1", "n: 2024-01-01",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(_lines, max_size=14).map("\n".join))
def test_the_fast_path_reads_what_the_careful_loader_reads(text):
    """Whatever the fast path accepts (document splitting, the checks that send a file down the careful
    path), it reads as the careful loader does: the same documents, from the same lines."""
    from catalog.descriptors.loader import load_documents_fast

    fast = load_documents_fast(text, "f.yaml")
    if fast is None:
        return
    careful, errors = load_documents(text, "f.yaml")
    assert errors == []
    assert [(d.line, d.data) for d in fast] == [(d.line, d.data) for d in careful]


def test_the_fast_path_leaves_risky_files_to_the_careful_loader():
    from catalog.descriptors.loader import load_documents_fast

    assert load_documents_fast("a: 1\nschedule: 0 3 * * *\n", "f.yaml") is not None  # '*' alone is no alias
    for text in ("a: &x 1\nb: *x\n", "a: !!python/object:os.system 1\n", "a: [[[[[[[[1]]]]]]]]\n",
                 "%YAML 1.2\n---\na: 1\n", "a: 1\n...\n", "a:\n" + " " * 61 + "b: 1\n"):
        assert load_documents_fast(text, "f.yaml") is None, text
