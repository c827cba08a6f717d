"""Bad input: each case fails the run with a clear message, writes nothing outside the run's
workspace and publishes nothing."""

import os

import pytest

from catalog.models import Entity
from portal.scaffolder.models import RunStatus

from .conftest import register_template, run_inline, start, unique

pytestmark = pytest.mark.django_db

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(name)s, title: Hostile}
spec:
  owner: fraud-ml
  type: test
  parameters:
    - properties:
        name: {type: string}
        path: {type: string}
  steps:
%(steps)s
    - id: publish
      action: publish:git
      input: {repoUrl: "local?owner=fraud-ml&repo=%(name)s"}
    - id: register
      action: catalog:register
      input: {repoContentsUrl: "${{ steps.publish.output.repoContentsUrl }}"}
"""
CATALOG = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: x}\nspec: {type: service, lifecycle: experimental, owner: fraud-ml}\n"
FETCH = "    - {id: fetch, action: fetch:template, input: {url: ./skeleton, values: {name: '${{ parameters.name }}'}}}"


def all_files(root):
    return {os.path.join(d, f) for d, _, files in os.walk(root) for f in files}


def run_hostile(org, tmp_path, steps, files=None, parameters=None):
    name = unique("bad")
    files = {"skeleton/catalog-info.yaml": CATALOG, **(files or {})}
    entity = register_template(tmp_path, TEMPLATE % {"name": name, "steps": steps}, files)
    before = all_files(tmp_path.parent)
    run = run_inline(start(org["users"]["alice"], name, parameters or {}, entity=entity))
    assert run.status == RunStatus.FAILED
    assert all_files(tmp_path.parent) == before  # no file written anywhere (the workspace is gone too)
    assert not (tmp_path / "scaffolder" / "published").exists()  # nothing published
    assert not Entity.objects.filter(ref="component:default/x").exists()
    assert run.error
    return run


@pytest.mark.parametrize(
    ("steps", "parameters", "expected"),
    [
        (
            FETCH
            + "\n    - {id: mv, action: fs:rename, input: {files: [{from: catalog-info.yaml, to: '../${{ parameters.name }}'}]}}",
            {"name": "escaped"},
            "leaves the workspace ('..')",
        ),
        (
            FETCH
            + "\n    - {id: mv, action: fs:rename, input: {files: [{from: catalog-info.yaml, to: '${{ parameters.path }}'}]}}",
            {"path": "/tmp/owned"},
            "is absolute",
        ),
        (
            "    - {id: fetch, action: fetch:template, input: {url: ./skeleton, targetPath: ../../out}}",
            {},
            "leaves the workspace",
        ),
        (
            "    - {id: fetch, action: fetch:template, input: {url: ../../../etc}}",
            {},
            "leaves the template's folder",
        ),
        ("    - {id: fetch, action: fetch:template, input: {url: /etc}}", {}, "is absolute"),
        ("    - {id: del, action: fs:delete, input: {files: ['../*']}}", {}, "leaves the workspace"),
    ],
)
def test_path_traversal_is_refused(org, scaffolder_root, tmp_path, steps, parameters, expected):
    run = run_hostile(org, tmp_path, steps, parameters=parameters)
    assert expected in run.error


def test_file_names_rendered_from_values_cannot_escape(org, scaffolder_root, tmp_path):
    run = run_hostile(
        org,
        tmp_path,
        FETCH,
        files={"skeleton/${{ values.name }}.txt": "hi"},
        parameters={"name": "../../../../escaped"},
    )
    assert "leaves the workspace" in run.error
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_symlinks_and_git_folders_in_skeletons_are_refused(org, scaffolder_root, tmp_path):
    secret = tmp_path / "outside-secret.txt"
    secret.write_text("server secret")
    name = unique("sym")
    entity = register_template(
        tmp_path, TEMPLATE % {"name": name, "steps": FETCH}, {"skeleton/catalog-info.yaml": CATALOG}
    )
    (entity_dir := __import__("pathlib").Path(entity.source).parent)
    os.symlink(secret, entity_dir / "skeleton" / "leak.txt")
    run = run_inline(start(org["users"]["alice"], name, {}, entity=entity))
    assert run.status == RunStatus.FAILED and "symbolic link: leak.txt" in run.error
    os.unlink(entity_dir / "skeleton" / "leak.txt")
    (entity_dir / "skeleton" / ".git" / "hooks").mkdir(parents=True)
    (entity_dir / "skeleton" / ".git" / "hooks" / "post-commit").write_text("#!/bin/sh\ntouch /tmp/pwned\n")
    run = run_inline(start(org["users"]["alice"], name, {}, entity=entity))
    assert run.status == RunStatus.FAILED and ".git folder" in run.error


@pytest.mark.parametrize(
    "expression",
    [
        "${{ values.name.__class__.__mro__[1].__subclasses__() }}",
        "${{ values | attr('__class__') }}",
        "${{ '{0.__class__.__init__.__globals__}'.format(values.name) }}",
        "${{ cycler.__init__.__globals__.os }}",
    ],
)
def test_expressions_cannot_reach_python_internals(org, scaffolder_root, tmp_path, expression):
    run = run_hostile(org, tmp_path, FETCH, files={"skeleton/x.txt": expression}, parameters={"name": "n"})
    assert "blocked by the template sandbox" in run.error and "x.txt" in run.error


def test_user_values_are_data_never_template_source(org, scaffolder_root, tmp_path):
    """A value that looks like a template is written verbatim, not evaluated."""
    name = unique("data")
    steps = FETCH + "\n    - {id: log, action: debug:log, input: {listWorkspace: with-contents}}"
    entity = register_template(
        tmp_path,
        TEMPLATE % {"name": name, "steps": steps},
        {"skeleton/catalog-info.yaml": CATALOG, "skeleton/v.txt": "${{ values.name }}"},
    )
    payload = "${{ 7*7 }}{{ cycler.__init__ }}{% for x in range(9) %}{% endfor %}"
    run = start(org["users"]["alice"], name, {"name": payload}, entity=entity, dry_run=True)
    run = run_inline(run)
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert next(f for f in run.files if f["path"] == "v.txt")["content"] == payload


def test_file_count_and_byte_caps(org, scaffolder_root, tmp_path, settings):
    settings.PLINTH_SCAFFOLDER_MAX_FILES = 3
    files = {f"skeleton/f{i}.txt": "x" for i in range(5)}
    run = run_hostile(org, tmp_path, FETCH, files=files)
    assert "more than 3 files" in run.error
    settings.PLINTH_SCAFFOLDER_MAX_FILES = 500
    settings.PLINTH_SCAFFOLDER_MAX_BYTES = 1000
    run = run_hostile(org, tmp_path, FETCH, files={"skeleton/big.txt": "${{ 'x' * 5000 }}"})
    assert "more than 1000 bytes" in run.error


def test_unknown_actions_and_missing_inputs_fail_before_anything_runs(org, scaffolder_root, tmp_path):
    run = run_hostile(org, tmp_path, FETCH + "\n    - {id: x, action: shell:exec, input: {cmd: rm -rf /}}")
    assert "shell:exec" in run.error and "does not support" in run.error
    assert list(run.steps.values_list("status", flat=True)) == ["skipped"] * 4  # nothing ran
    run = run_hostile(org, tmp_path, "    - {id: fetch, action: fetch:template, input: {}}")
    assert "Step 'fetch' (fetch:template) is missing required input(s): url" in run.error
    run = run_hostile(
        org, tmp_path, "    - {id: fetch, action: fetch:template, input: {url: '${{ parameters.path }}'}}"
    )
    assert "missing required input(s): url" in run.error


@pytest.mark.parametrize(
    "steps",
    [
        "    - {id: wait, action: debug:wait, input: {minutes: 60}}",
        FETCH,  # the skeleton file below loops "forever" (10^10 iterations)
    ],
)
def test_a_never_ending_template_hits_the_time_limit(org, scaffolder_root, tmp_path, settings, steps):
    settings.PLINTH_SCAFFOLDER_RUN_TIME_LIMIT = 2
    loop = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    run = run_hostile(org, tmp_path, steps, files={"skeleton/loop.txt": loop})
    assert "exceeded its time limit of 2 s" in run.error
    assert run.duration < 10


SLOW_OUTPUT = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(name)s, title: Slow output}
spec:
  owner: fraud-ml
  type: test
  steps:
    - {id: log, action: debug:log, input: {message: hi}}
  output:
    %(kind)s:
      - {title: t, %(key)s: "${{ 1 }}{%% for i in range(100000) %%}{%% for j in range(1500) %%}{%% endfor %%}{%% endfor %%}"}
"""


@pytest.mark.parametrize(("kind", "key"), [("text", "content"), ("links", "url")])
@pytest.mark.parametrize("dry_run", [False, True])
def test_the_output_is_rendered_within_the_time_limit(org, scaffolder_root, tmp_path, settings, kind, key, dry_run):
    """The output's links and text are template expressions: a loop there stops at the time limit and
    fails the run like a step that loops, instead of running on after it."""
    settings.PLINTH_SCAFFOLDER_RUN_TIME_LIMIT = 1
    name = unique("slowout")
    entity = register_template(tmp_path, SLOW_OUTPUT % {"name": name, "kind": kind, "key": key})
    run = run_inline(start(org["users"]["alice"], name, {}, entity=entity, dry_run=dry_run))
    assert run.status == RunStatus.FAILED
    assert "exceeded its time limit of 1 s while rendering its output" in run.error
    assert run.duration < 5 and not run.output
    assert list(run.steps.values_list("status", flat=True)) == ["done"]


def test_schema_failing_values_never_start_a_run(client, org, scaffolder_root):
    from portal.scaffolder.models import Run

    client.force_login(org["users"]["alice"])
    response = client.post(
        "/create/templates/default/ml-model-service/",
        {
            "_page": "review",
            "_action": "create",
            "_values": '{"name": "../../etc", "owner": "fraud-ml", "modelType": "classifier", "riskTier": 9}',
        },
    )
    assert response.status_code == 200 and Run.objects.count() == 0
    assert "Not in the expected format: it has the character(s) &#x27;/&#x27;" in response.content.decode()


DELETE_ALL = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {name: %(name)s, title: Delete all}
spec:
  owner: fraud-ml
  type: test
  steps:
    - {id: fetch, action: fetch:template, input: {url: ./skeleton}}
    - {id: del, action: fs:delete, input: {files: ['%(pattern)s']}}
    - {id: again, action: fetch:template, input: {url: ./skeleton, targetPath: again}}
    - {id: list, action: debug:log, input: {listWorkspace: true}}
"""


@pytest.mark.parametrize("pattern", ["**", "**/*", ".", "*"])
def test_deleting_everything_keeps_the_workspace_itself(org, scaffolder_root, tmp_path, pattern):
    """`**` matches the workspace root too (and folders before what they hold): what it holds is
    deleted, the root never, so later steps still write into it."""
    name = unique("delall")
    entity = register_template(tmp_path, DELETE_ALL % {"name": name, "pattern": pattern},
                               {"skeleton/catalog-info.yaml": CATALOG, "skeleton/src/pkg/a.py": "x = 1\n"})
    run = run_inline(start(org["users"]["alice"], name, {}, entity=entity))
    assert run.status == RunStatus.SUCCEEDED, run.error
    logs = [entry.message for entry in run.logs.all()]
    deleted = run.steps.get(step_id="del").output["deleted"]
    assert deleted == {"**": 1, "**/*": 2, ".": 0, "*": 2}[pattern], logs  # src holds src/pkg: one deletion
    assert (pattern in ("**", ".")) == any("the workspace folder itself is kept" in m for m in logs)
    listing = [m for m in logs if m.strip().startswith("again/")]
    assert len(listing) == 2, logs
