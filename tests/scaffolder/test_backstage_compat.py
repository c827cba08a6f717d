"""The Backstage software templates of ../shared/compat/backstage/templates load, render their
forms and run (publish:github → publish:git here); unsupported actions are named clearly."""

import pytest

from catalog import services as catalog_services
from catalog.models import Entity
from portal.scaffolder import forms
from portal.scaffolder.models import RunStatus
from portal.scaffolder.templates import from_entity

from .conftest import run_inline, start, template_entity, unique

pytestmark = pytest.mark.django_db

RUNNABLE = {
    "create-react-app": ("create-react-app-template", "component_id", {"description": "A website"}),
    "react-ssr-template": ("react-ssr-template", "component_id", {"description": "An SSR site"}),
    "docs-template": ("docs-template", "name", {"description": "Docs of things"}),
}
UNSUPPORTED = {
    "pull-request": ("pull-request", "publish:github:pull-request"),
    "rails-demo": ("rails-demo", "fetch:rails"),
}


@pytest.fixture
def compat_templates(backstage_compat, org):
    for folder in list(RUNNABLE) + list(UNSUPPORTED):
        plan = catalog_services.location_register(
            target=str(backstage_compat / "templates" / folder / "template.yaml"), actor=None, file_roots=None
        )
        assert not plan.errors, [str(e) for e in plan.errors]
    return backstage_compat


@pytest.mark.parametrize("folder", list(RUNNABLE) + list(UNSUPPORTED))
def test_forms_render(client, org, compat_templates, folder):
    name = (RUNNABLE.get(folder) or UNSUPPORTED[folder])[0]
    client.force_login(org["users"]["alice"])
    html = client.get(f"/create/templates/default/{name}/").content.decode()
    assert 'name="p.name"' in html or 'name="p.component_id"' in html
    if folder != "pull-request":  # the only one without an OwnerPicker
        assert '<option value="fraud-ml"' in html  # OwnerPicker → the team picker
    widgets = {
        f.name: f.widget
        for p in forms.pages(from_entity(template_entity(name)), org["users"]["alice"])
        for f in p.fields
    }
    assert widgets["repoUrl"] == "repourl"  # RepoUrlPicker → host, owner, repository inputs
    if folder in UNSUPPORTED:
        assert UNSUPPORTED[folder][1] in html and 'data-testid="unsupported"' in html
    else:
        assert "publish:github</code> → <code>publish:git" in html


@pytest.mark.parametrize("folder", list(RUNNABLE))
def test_runnable_templates_publish_and_register(org, scaffolder_root, compat_templates, folder):
    name, name_field, extra = RUNNABLE[folder]
    component = unique("site")
    values = {
        name_field: component,
        "owner": "fraud-ml",
        "repoUrl": f"github.com?owner=fraud-ml&repo={component}",
        **extra,
    }
    run = run_inline(start(org["users"]["alice"], name, values))
    assert run.status == RunStatus.SUCCEEDED, (run.error, list(run.logs.values_list("message", flat=True)))
    entity = Entity.objects.get(ref=f"component:default/{component}")
    assert entity.owner_team.name == "fraud-ml"
    assert entity.annotations["github.com/project-slug"] == f"fraud-ml/{component}"
    links = {link["title"]: link["url"] for link in run.output["links"]}
    assert links["Open in catalog"] == f"/catalog/component/default/{component}/"
    assert links["Repository"] == f"/create/repositories/fraud-ml/{component}.bundle"
    assert run.logs.filter(message__contains="publish:github → publish:git").exists()


@pytest.mark.parametrize("folder", list(UNSUPPORTED))
def test_unsupported_actions_are_named(org, scaffolder_root, compat_templates, folder):
    name, action = UNSUPPORTED[folder]
    template = from_entity(template_entity(name))
    assert action in template.unsupported_actions
    values = {
        "name": unique("x"),
        "owner": "fraud-ml",
        "repoUrl": "github.com?owner=fraud-ml&repo=x",
        "dryRun": True,
    }
    run = run_inline(start(org["users"]["alice"], name, values))
    assert run.status == RunStatus.FAILED
    assert f"action(s) Plinth does not support: {action}" in run.error
    assert not (scaffolder_root / "published").exists()
