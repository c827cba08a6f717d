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


def test_action_logs_count_files_and_name_the_project_root():
    from portal.scaffolder.actions import _files, _where

    assert [_files(n) for n in (0, 1, 19)] == ["0 files", "1 file", "19 files"]
    assert _where(".", "the project root") == "the project root" == _where("", "the project root")
    assert _where("services/api", "the project root") == "services/api"
