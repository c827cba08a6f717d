"""API definitions from hostile authors: the analysis runs inside the web request (the Definition tab,
its source fragment and the definitions API; cached only once it finishes), so it must take time linear
in the definition, and a field of the wrong shape must be named, not reported as a Python TypeError."""

import json
import time

import pytest

from portal.techdocs import definitions

# Each took the old code minutes (quadratic regexes, a brace scan per `service X {`, Pygments' protobuf
# comment rules); linear code reads them in well under a second. The bound is for a loaded 2-core machine.
BOUND_SECONDS = 6.0  # measured 0.1-0.5 s here; the old code took 30 s to minutes
HOSTILE = {
    "grpc-unclosed-services": ("grpc", "service A {" * 10_000),  # 110 kB; 44 kB took 32 s
    "grpc-unclosed-block-comments": ("grpc", "/* " * 70_000),  # 210 kB; 60 kB took 90 s
    "grpc-blank-lines": ("grpc", "x" + "\n" * 200_000),
    "graphql-blank-lines": ("graphql", "x" + "\n" * 200_000),  # 20 kB took 32 s
    "graphql-unclosed-types": ("graphql", "type A {\n" * 5_000),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_a_hostile_definition_is_analysed_in_linear_time(name):
    kind, text = HOSTILE[name]
    started = time.perf_counter()
    result = definitions.analyse(kind, text)
    elapsed = time.perf_counter() - started
    assert elapsed < BOUND_SECONDS, f"{name}: {len(text)} characters took {elapsed:.1f} s"
    assert result.source_html  # still shown, highlighted or as text


def test_a_long_openapi_description_of_unclosed_brackets_renders_in_bounded_time():
    """info.description is rendered by rendering.render_markdown, whose scan budget covers it."""
    doc = {"openapi": "3.0.0", "info": {"title": "T", "description": "[" * 20_000}, "paths": {}}
    started = time.perf_counter()
    result = definitions.analyse("openapi", json.dumps(doc))
    assert time.perf_counter() - started < BOUND_SECONDS
    assert result.description_html.count("[") == 20_000


def test_an_unclosed_protobuf_comment_runs_to_the_end_and_is_highlighted_as_one():
    result = definitions.analyse("grpc", "message A {}\n/* not closed\nmessage B {}\n")
    assert [t["name"] for t in result.types] == ["A"]
    assert '<span class="cm">/* not closed</span>' in result.source_html


def test_a_comment_opener_inside_a_protobuf_string_is_not_a_comment():
    """googleapis-style paths ("projects/*") hold `/*`: it must not swallow the declarations after it."""
    result = definitions.analyse("grpc", """
service Library {
  rpc GetBook (GetBookRequest) returns (Book) {
    option (google.api.http) = { get: "/v1/{name=shelves/*}" };  // a "quoted" comment
  }
}
message GetBookRequest {}
/* between */ message Book {}
""")
    assert result.errors == []
    assert result.services == [{"name": "Library", "rpcs": [
        {"name": "GetBook", "request": "GetBookRequest", "response": "Book"}]}]
    assert [t["name"] for t in result.types] == ["GetBookRequest", "Book"]


def test_a_service_without_its_closing_brace_ends_where_the_next_service_starts():
    result = definitions.analyse("grpc", """
service A {
  rpc One (X) returns (Y);
service B {
  rpc Two (X) returns (Y);
}
""")
    assert [(s["name"], [r["name"] for r in s["rpcs"]]) for s in result.services] == [("A", ["One"]), ("B", ["Two"])]


def test_graphql_fields_are_read_up_to_the_next_declaration_when_a_brace_is_missing():
    result = definitions.analyse("graphql", "type A {\n  one: Int\n\n\ntype B {\n  two: Int\n}\n")
    assert [(t["name"], t["fields"]) for t in result.types] == [("A", ["one"]), ("B", ["two"])]


OPENAPI = {"openapi": "3.0.3", "info": {"title": "T", "version": "1"},
           "paths": {"/pets": {"get": {"tags": ["pets"], "responses": {"200": {"description": "ok"}}}}}}


@pytest.mark.parametrize(("where", "value", "message"), [
    (("servers",), 5, "OpenAPI 'servers' must be a list, not a number."),
    (("servers",), {"url": "https://x"}, "OpenAPI 'servers' must be a list, not a mapping."),
    (("paths", "/pets", "get", "tags"), 5, "OpenAPI 'paths./pets.get.tags' must be a list, not a number."),
    (("paths", "/pets", "get", "tags"), "pets", "OpenAPI 'paths./pets.get.tags' must be a list, not a string."),
])
def test_a_field_of_the_wrong_shape_is_named_with_where_it_is(where, value, message):
    doc = json.loads(json.dumps(OPENAPI))
    node = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    result = definitions.analyse("openapi", json.dumps(doc))
    assert result.errors == [message]
    assert not result.interactive
    [operation] = result.operations  # the rest of the definition is still summarised
    assert operation["path"] == "/pets" and operation["tags"] in ([], ["pets"])


def test_wrong_shapes_in_every_operation_give_a_bounded_list_of_errors():
    doc = {"openapi": "3.0.3", "info": {"title": "T"},
           "paths": {f"/p{i}": {"get": {"tags": 1, "responses": {}}} for i in range(500)}}
    result = definitions.analyse("openapi", json.dumps(doc))
    assert len(result.operations) == 500
    assert len(result.errors) == definitions.MAX_SHAPE_ERRORS
    assert result.errors[0] == "OpenAPI 'paths./p0.get.tags' must be a list, not a number."
