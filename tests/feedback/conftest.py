"""A small world for the feedback tests: the owning team (fraud-ml) with its maintainer, member and
viewer, the platform team, an outsider team, a public and a private entity of fraud-ml with a docs
page, a Template entity and a run of it."""

from __future__ import annotations

import pytest
from django.test import Client

from portal.accounts.models import Role
from portal.scaffolder.models import Run
from portal.techdocs.models import DocPage, DocSite
from tests.factories import EntityFactory, MembershipFactory, TeamFactory, UserFactory


def drain(max_rounds: int = 10) -> list[str]:
    """Run unsent outbox work in this process, as a worker would (tasks called directly)."""
    import portal.feedback.tasks  # noqa: F401 (registers the task)
    from portal.celery import app
    from portal.governance.models import OutboxMessage

    ran = []
    for _ in range(max_rounds):
        pending = list(OutboxMessage.objects.filter(sent_at__isnull=True).order_by("id"))
        if not pending:
            break
        for message in pending:
            OutboxMessage.objects.filter(pk=message.pk).update(sent_at=message.created_at)
            app.tasks[message.task](*message.args)
            ran.append(message.key)
    return ran


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def fb(db):
    teams = {name: TeamFactory(name=name) for name in ("fraud-ml", "platform", "recsys")}
    users = {}
    for username, team, role in [("maint", "fraud-ml", Role.MAINTAINER), ("member", "fraud-ml", Role.MEMBER),
                                 ("viewer", "fraud-ml", Role.VIEWER), ("padmin", "platform", Role.ADMIN),
                                 ("pmaint", "platform", Role.MAINTAINER), ("dan", "recsys", Role.MEMBER),
                                 ("carol", "recsys", Role.MAINTAINER)]:
        users[username] = UserFactory(username=username)
        MembershipFactory(user=users[username], team=teams[team], role=role)
    users["root"] = UserFactory(username="root", is_superuser=True, is_staff=True)
    public = EntityFactory(name="scorer", title="Fraud scorer", owner_team=teams["fraud-ml"])
    private = EntityFactory(name="secret-scorer", owner_team=teams["fraud-ml"], visibility="private")
    orphan = EntityFactory(name="nobodys", owner_team=None)
    template = EntityFactory(kind="Template", name="ml-service", title="ML service", owner_team=teams["fraud-ml"],
                             spec_type="service")
    site = DocSite.objects.create(entity=public, status="ok", page_count=2)
    DocPage.objects.create(site=site, path="", source_path="index.md", title="Scorer docs", html="<p>Hi</p>")
    DocPage.objects.create(site=site, path="guide/", source_path="guide.md", title="Guide", html="<p>Guide</p>")
    private_site = DocSite.objects.create(entity=private, status="ok", page_count=1)
    DocPage.objects.create(site=private_site, path="", source_path="index.md", title="Secret docs", html="<p>x</p>")
    run = Run.objects.create(template_ref=template.ref, template_title="ML service", template_source="x",
                             template={}, created_by=users["dan"], status="succeeded")
    return {"teams": teams, "users": users, "public": public, "private": private, "orphan": orphan,
            "template": template, "run": run}
