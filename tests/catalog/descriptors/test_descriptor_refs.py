"""Names, namespaces, tags, keys and entity references."""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog.descriptors.refs import (
    EntityRef,
    is_valid_key,
    is_valid_label_value,
    is_valid_name,
    is_valid_namespace,
    is_valid_tag,
    name_problem,
    parse_ref,
)


@pytest.mark.parametrize("name", ["a", "A1", "my-service", "my_service.v2", "a" * 63, "x-y_z.w"])
def test_valid_names(name):
    assert is_valid_name(name)


@pytest.mark.parametrize(
    "name", ["", "a" * 64, "-a", "a-", "a--b", "a b", "a/b", "a:b", "é", None, 5, "a\nb"]
)
def test_invalid_names(name):
    assert not is_valid_name(name)


def test_homoglyph_and_zero_width_messages():
    assert name_problem("p\u0430yments").endswith(
        "contains non-ASCII character U+0430 CYRILLIC SMALL LETTER A"
    )
    assert "contains non-ASCII character U+200B ZERO WIDTH SPACE" in name_problem("pay\u200bments")
    assert not is_valid_tag("ja\u0432a") and not is_valid_namespace("def\u0430ult")
    assert not is_valid_key("backstage.io/na\u200dme")


def test_namespace_tag_key_label_rules():
    assert is_valid_namespace("default") and is_valid_namespace("team-1")
    assert not any(map(is_valid_namespace, ["Default", "a_b", "a.b", "-a", "a" * 64, ""]))
    assert all(map(is_valid_tag, ["java", "c++", "c#", "go:115", "web-ui", "a" * 63]))
    assert not any(map(is_valid_tag, ["Java", "go 1.15", "a--b", "-a", "a" * 64, "a_b", "a.b"]))
    assert all(map(is_valid_key, ["goVersion", "backstage.io/source-template", "a.b-c.io/x_y"]))
    assert not any(
        map(is_valid_key, ["a/b/c", "/x", "Foo.io/x", "x/", "a b", ("a" * 254) + "/x", "a.io/" + "b" * 64])
    )
    assert all(map(is_valid_label_value, ["", "go1.15.3", "music"]))
    assert not is_valid_label_value("Random value Generator")


REF_TABLE = [
    # (ref, default_kind, expected str or error fragment)
    ("team-a", "group", "group:default/team-a"),
    ("user:guest", "group", "user:default/guest"),
    ("Group:Backstage/Techdocs-Core", None, "group:backstage/Techdocs-Core"),
    ("backstage/techdocs-core", "group", "group:backstage/techdocs-core"),
    ({"kind": "Component", "name": "x"}, None, "component:default/x"),
    ({"kind": "API", "namespace": "ops", "name": "y"}, None, "api:ops/y"),
    ("resource:artists-db", None, "resource:default/artists-db"),
    ("artists-db", None, "needs a kind"),
    (":x", "group", "malformed"),
    ("k:/x", "group", "malformed"),
    ("k:ns/", "group", "malformed"),
    ("a/b/c", "group", "malformed"),
    ("", "group", "malformed"),
    ("x y", "group", "is invalid"),
    ("n\u0430me", "group", "U+0430 CYRILLIC SMALL LETTER A"),
    ("bad_ns/x", "group", "namespace"),
    ("1kind:x", None, "invalid kind"),
    ({"name": "x", "extra": 1}, "group", "unknown field"),
    (42, "group", "must be a string or a mapping"),
]


@pytest.mark.parametrize("ref,default_kind,expected", REF_TABLE)
def test_parse_ref_table(ref, default_kind, expected):
    if ":" in expected and "/" in expected:
        assert str(parse_ref(ref, default_kind=default_kind)) == expected
    else:
        with pytest.raises(ValueError, match=re.escape(expected)):
            parse_ref(ref, default_kind=default_kind)


def test_entity_ref_key_and_default_namespace():
    ref = parse_ref("Name", default_kind="Group", default_namespace="ops")
    assert ref == EntityRef("group", "ops", "Name") and ref.key() == "group:ops/name"


names = st.from_regex(r"\A[A-Za-z0-9]{1,10}(?:[-_.][A-Za-z0-9]{1,10}){0,4}\Z")
tags = st.from_regex(r"\A[a-z0-9:+#]{1,10}(?:-[a-z0-9:+#]{1,10}){0,4}\Z")


@given(names)
def test_generated_names_are_valid_and_round_trip_as_refs(name):
    assert is_valid_name(name)
    assert parse_ref(f"component:default/{name}").name == name


@given(tags)
def test_generated_tags_are_valid(tag):
    assert is_valid_tag(tag)


@given(st.text(max_size=80))
def test_name_validator_agrees_with_the_grammar(text):

    expected = len(text) <= 63 and re.fullmatch(r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*", text, re.ASCII)
    assert is_valid_name(text) == bool(expected)
    assert is_valid_tag(text) == bool(
        len(text) <= 63 and re.fullmatch(r"[a-z0-9:+#]+(?:-[a-z0-9:+#]+)*", text, re.ASCII)
    )
