"""Units: the expression sandbox, path rules, and schema → form fields."""

import pytest

from portal.scaffolder import expressions, forms, paths
from portal.scaffolder.templates import from_data

CTX = {
    "parameters": {"name": "svc", "dryRun": False, "repoUrl": "github.com?owner=o&repo=r", "n": 3},
    "steps": {},
}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("${{ parameters.name }}", "svc"),
        ("${{ parameters.n }}", 3),  # a whole expression keeps its type
        ("x-${{ parameters.name }}-y", "x-svc-y"),
        ("${{ parameters.dryRun !== true }}", True),  # nunjucks/JS operators
        (
            "${{ parameters.repoUrl | parseRepoUrl }}",
            {
                "host": "github.com",
                "owner": "o",
                "repo": "r",
                "organization": "",
                "workspace": "",
                "project": "",
            },
        ),
        ("${{ parameters.repoUrl | projectSlug }}", "o/r"),
        ("${{ steps.publish.output.remoteUrl }}", None),  # a skipped step's output is empty, not an error
        ({"a": ["${{ parameters.name }}"]}, {"a": ["svc"]}),
    ],
)
def test_render_value(value, expected):
    assert expressions.render_value(value, CTX) == expected


def test_nunjucks_style_blocks_render():
    text = "a: 1\n{%- if values.d %}\nd: ${{ values.d | dump }}\n{%- endif %}\n"
    assert expressions.render_string(text, {"values": {"d": 'q"'}}) == 'a: 1\nd: "q\\""\n'
    assert expressions.render_string(text, {"values": {}}) == "a: 1\n"


@pytest.mark.parametrize(
    "expression",
    [
        "parameters.__class__",
        "parameters.name.__class__.__mro__",
        "parameters | attr('__class__')",
        "'{0.__class__}'.format(parameters.name)",
        "cycler.__init__.__globals__",
        "'a' * 100000000",
        "'%0999999d' % 1",
        "'{:>9999999}'.format(1)",
        "2 ** 100000",
    ],
)
def test_sandbox_blocks_internals_and_memory_bombs(expression):
    with pytest.raises(expressions.ExpressionError, match="blocked by the template sandbox"):
        expressions.evaluate(expression, CTX)


BIG = "'x' * 999999"  # a string just under MAX_RESULT, allowed on its own


@pytest.mark.parametrize(
    "expression",
    [
        "'x'|center(10**7)",
        "'x'|center(10**9)",
        "'{:>{}}'.format('x', 10**8)",
        "'{0:{1}}'.format('x', 10**7)",
        "'{:{}.{}}'.format(1.5, 1, 10**8)",
        "'{a:>{w}}'.format_map({'a': 'x', 'w': 10**8})",
        "('{0:9999}' * 1000).format('x')",
        "'%*s' % (10**9, 'x')",
        "('%9999s' * 1000) % ((('x',) * 1000))",
        "'%*s'|format(10**9, 'x')",
        "'%0999999d'|format(1)",
        "'a\\nb'|indent(10**8)",
        "'a\\nb'|indent(' ' * 999999, true)",
        "('a b ' * 200000)|wordwrap(1, wrapstring='x' * 99)",
        "[1]|batch(10**7, 'a')|list|first|length",
        "[1]|batch(10**9, 'a')|list",
        "[1]|slice(10**9)|list",
        "lipsum(10**4)",
        "lipsum(10, max=10**6)",
        "(" + BIG + ")|replace('x', " + BIG + ")",
        "'a b'|replace(' ', 'x' * 999999 ~ 'yy')",
        "('x' * 999999).replace('x', 'xx')",
        "'x'.center(10**9)",
        "'x'.ljust(10**9)",
        "'x'.zfill(10**9)",
        "('\\t' * 1000).expandtabs(10**6)",
        "('x' * 1000).translate({120: 'y' * 999999})",
        "(" + BIG + ").join(range(3)|map('string'))",
        "range(100000)|join('x' * 999999)",
        "range(100000)|map('center', 999999)|join",
        "range(100000)|map('center', 999999)|list|length",
        "range(100000)|map('center', 999999)|select|list",
        "[" + BIG + "] * 3",
        "[[" + BIG + "], [" + BIG + "]]|sum(start=[])",
        "[[" + BIG + "]]|sum(start=[[" + BIG + "]])",
        "[" + BIG + ", " + BIG + "]|string",
        "[" + BIG + ", " + BIG + "]|dump",
        "[" + BIG + ", " + BIG + "]|tojson",
        "[" + BIG + ", " + BIG + "]|pprint",
        "[" + BIG + ", " + BIG + "]",
        "(" + BIG + ") ~ (" + BIG + ")",
        "(range(100000)|list) * 11",
        "10 ** 64 ** 64 ** 64 ** 64",
        "(10 ** 64 ** 64 ** 64) * (10 ** 64 ** 64 ** 64)",
    ],
)
def test_sandbox_refuses_big_results_before_making_them(expression):
    """Each expression would make far more than MAX_RESULT characters or items (some, gigabytes): it is
    refused with the sandbox's error, at once and without allocating more than a few megabytes."""
    import time
    import tracemalloc

    tracemalloc.start()
    # This thread's CPU time, not the wall clock: on a loaded machine (2 cores shared with other test runs)
    # the wall clock also counts the time spent waiting for a core, which says nothing of the work done.
    started = time.thread_time()
    try:
        with pytest.raises(expressions.ExpressionError, match="blocked by the template sandbox"):
            expressions.evaluate(expression, CTX)
        spent = time.thread_time() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # Traced, the slowest refusal (wordwrap's, which counts the breaks of a 1 MB text) takes ~0.4 s of CPU;
    # doing that wordwrap instead of refusing it takes ~2.7 s and 43 MB, the others far more.
    assert spent < 1.5, f"{spent:.2f} s of CPU to refuse it: it was not refused before the work was done"
    assert peak < 12 * expressions.MAX_RESULT, peak


@pytest.mark.parametrize(
    "template",
    [
        "{% set ns = namespace(s='x' * 500000) %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% for i in range(100000) %}${{ 'x'|center(999999) }}{% endfor %}",
        "{% set s %}{% for i in range(100000) %}${{ 'x' * 999999 }}{% endfor %}{% endset %}${{ s|length }}",
        "{% for x in range(100000)|map('center', 999999) %}${{ loop.length }}{% endfor %}",
        "{% macro m() %}${{ 'x' * 999999 }}${{ 'x' * 999999 }}{% endmacro %}${{ (m() ~ m() ~ m())|length }}",
        "{% macro m() %}{% for i in range(100000) %}${{ 'x' * 999999 }}{% endfor %}{% endmacro %}${{ m()|length }}",
    ],
)
def test_sandbox_refuses_big_rendered_text(template):
    """Templates (skeleton files, inputs with text around `${{ … }}`) that build their output piece by
    piece: the concatenation (`~`), a captured block, a macro and the whole file are bounded too."""
    import time

    started = time.monotonic()
    with pytest.raises(expressions.ExpressionError, match="blocked by the template sandbox"):
        expressions.render_string(template, CTX)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'x'|center(9)", "    x    "),
        ("'a\\nb'|indent(2, true)", "  a\n  b"),
        ("'{:>{}}'.format('x', 3)", "  x"),
        ("'{0:.2f}'.format(1.234)", "1.23"),
        ("'%-5s|' % 'ab'", "ab   |"),
        ("'%*d'|format(3, 7)", "  7"),
        ("'%(a)s'|format(a=1)", "1"),
        ("[1, 2, 3]|join('-')", "1-2-3"),
        ("range(100000)|join(',')|length", 588889),
        ("range(100000)|map('string')|list|length", 100000),
        ("[1, 2, 3, 4, 5]|batch(2, 0)|list", [[1, 2], [3, 4], [5, 0]]),
        ("[1, 2, 3]|slice(2)|list", [[1, 2], [3]]),
        ("[[1], [2]]|sum(start=[])", [1, 2]),
        ("'a-b'|replace('-', '_')", "a_b"),
        ("'ab'.center(6, '*')", "**ab**"),
        ("'-'.join(['a', 'b'])", "a-b"),
        ("'x' ~ 1 ~ none", "x1None"),
        ("10 ** 64 ** 64 ** 64 > 0", True),
        ("(lipsum(3, false, 5, 10)|length) > 10", True),
        ("2 ** 64", 2**64),
        ("(" + BIG + ")|length", 999999),
        ("{'a': [1, 2]}|dump", '{"a": [1, 2]}'),
    ],
)
def test_sandbox_still_allows_ordinary_sizes(expression, expected):
    assert expressions.evaluate(expression, CTX) == expected


@pytest.mark.parametrize(
    "bad", ["../x", "a/../../x", "/etc/passwd", "~/x", "C:/x", "a/.git/hooks/x", "x\x00y"]
)
def test_paths_refused(tmp_path, bad):
    with pytest.raises(paths.PathError):
        paths.safe_join(tmp_path, bad)


def test_paths_refuse_symlinks(tmp_path):
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "link").symlink_to(tmp_path)
    with pytest.raises(paths.PathError, match="symbolic link"):
        paths.safe_join(tmp_path / "ws", "link/x")
    with pytest.raises(paths.PathError, match="symbolic link: link"):
        paths.walk_files(tmp_path / "ws")
    assert paths.safe_join(tmp_path / "ws", "./a/b.txt") == tmp_path / "ws" / "a" / "b.txt"


SCHEMA = {
    "apiVersion": "scaffolder.backstage.io/v1beta3",
    "kind": "Template",
    "metadata": {"name": "t"},
    "spec": {
        "type": "x",
        "steps": [],
        "parameters": [
            {
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "ui:field": "EntityNamePicker"},
                    "owner": {"type": "string", "ui:field": "OwnerPicker"},
                    "kind": {"type": "string", "enum": ["a", "b"]},
                    "flag": {"type": "boolean"},
                    "token": {"type": "string", "ui:field": "Secret"},
                    "fs": {
                        "type": "array",
                        "items": {"type": "string"},
                        "ui:field": "EntityPicker",
                        "ui:options": {"allowedKinds": ["FeatureSet"]},
                    },
                    "nested": {"type": "object", "properties": {"n": {"type": "integer"}}},
                },
            }
        ],
    },
}


@pytest.mark.django_db
def test_widgets_and_validation(org):
    template = from_data(SCHEMA, ref="template:default/t", source="/nonexistent/template.yaml")
    (page,) = forms.pages(template, org["users"]["dan"])
    widgets = {f.name: f.widget for f in page.fields}
    assert widgets == {
        "name": "text",
        "owner": "team",
        "kind": "select",
        "flag": "boolean",
        "token": "secret",
        "fs": "entities",
        "nested.n": "number",
    }
    owner = next(f for f in page.fields if f.name == "owner")
    assert owner.choices == [("recsys", "Recommender Systems")]
    errors = forms.validate_page(
        page,
        {
            "name": "bad name",
            "owner": "fraud-ml",
            "kind": "c",
            "fs": ["featureset:default/nope"],
            "nested": {"n": "x"},
        },
    )
    assert set(errors) == {"name", "owner", "kind", "fs", "nested.n"}
    assert forms.validate_page(page, {"name": "ok", "owner": "recsys"}) == {}
    params, secrets = forms.split_secrets([page], {"name": "ok", "token": "s3cret"})
    assert params == {"name": "ok"} and secrets == {"token": "s3cret"}


@pytest.mark.django_db
def test_each_missing_field_gets_its_own_required_message(org):
    """jsonschema reports each missing property apart with the whole `required` list: every message went
    to the first missing field (four "This field is required." under Name, none under the others)."""
    import copy

    data = copy.deepcopy(SCHEMA)
    data["spec"]["parameters"][0]["required"] = ["name", "kind", "flag", "nested"]
    (page,) = forms.pages(from_data(data, ref="template:default/t", source="/nonexistent/template.yaml"),
                          org["users"]["dan"])
    errors = forms.validate_page(page, {"kind": "a"})
    # `nested` is an object with no field of its own on the page: its message is the page's.
    assert errors == {"name": ["This field is required."], "flag": ["This field is required."],
                      "": ["This field is required."]}
    assert {f.name: f.errors for f in page.fields if f.errors} == {k: v for k, v in errors.items() if k}


def test_action_logs_count_files_and_name_the_project_root():
    from portal.scaffolder.actions import _files, _where

    assert [_files(n) for n in (0, 1, 19)] == ["0 files", "1 file", "19 files"]
    assert _where(".", "the project root") == "the project root" == _where("", "the project root")
    assert _where("services/api", "the project root") == "services/api"
