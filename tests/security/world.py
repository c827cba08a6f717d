"""The world the authorization matrix runs in: two teams, one user per actor, and three instances of
every object a URL can address — public (internal) of the other team, private of the actor's own
team, private of the other team — built through the services, as the portal builds them.

Every name of a private object carries a marker (`mxownsecret`, `mxothersecret`): a response to an
actor who may not see that object must not contain it (see `World.hidden_markers`).
"""

from __future__ import annotations

import io
import textwrap
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from catalog import services as catalog_services
from catalog.models import Entity, ExperimentRun, Location, ModelVersion, RunInput
from portal.accounts import services as account_services
from portal.accounts.models import Role
from portal.feedback import services as feedback_services
from portal.governance import services as governance_services
from portal.governance.models import Notification
from portal.incidents import services as incident_services
from portal.scaffolder import downloads as scaffolder_downloads
from portal.scaffolder import services as scaffolder_services
from portal.scaffolder.templates import from_entity
from portal.search import index
from portal.techdocs import services as techdocs_services
from tests.factories import MembershipFactory, TeamFactory, UserFactory

OWN, OTHER = "mx-own-team", "mx-other-team"
EDIT_ROLES = frozenset({Role.MEMBER, Role.MAINTAINER, Role.ADMIN})
DELETE_ROLES = frozenset({Role.MAINTAINER, Role.ADMIN})
REVIEW_ROLES = frozenset({Role.REVIEWER, Role.ADMIN})
REQUEST_ROLES = EDIT_ROLES

# instance key -> (name prefix, owner team, private)
INSTANCES = {
    "public": ("mxpub", OTHER, False),
    "own_private": ("mxownsecret", OWN, True),
    "other_private": ("mxothersecret", OTHER, True),
}
MISSING = "missing"


@dataclass
class Actor:
    key: str
    user: Any = None
    team: str | None = None  # the team the actor belongs to
    role: str | None = None
    token: str = ""  # raw bearer token ("" for anonymous; a well-formed unknown one for bad_token)
    platform_admin: bool = False

    @property
    def signed_in(self) -> bool:
        return self.user is not None

    def has_role(self, team: str | None, roles: frozenset[str]) -> bool:
        return self.team is not None and self.team == team and self.role in roles

    def __str__(self) -> str:
        return self.key


@dataclass
class Obj:
    """One addressable instance: its URL kwargs (or the query/body fields that name it), the strings
    that name it (normalised away when a hidden object's 404 is compared with a missing one's), and
    who it belongs to.

    `audience` says who may see it: "owned" (internal: everyone signed in; private: its team),
    "everyone" (teams, policy gates), "run" (its creator and its team), "personal" (its owner only,
    not even a platform admin: tokens)."""

    key: str
    kwargs: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)
    names: tuple[str, ...] = ()
    team: str | None = None
    private: bool = False
    audience: str = "owned"
    instance: Any = None
    registrant: Any = None  # locations: who registered it; requests: the requester; runs/tokens: the owner

    @property
    def missing(self) -> bool:
        return self.key == MISSING

    def visible_to(self, actor: Actor) -> bool:
        if self.missing or not actor.signed_in:
            return False
        if self.audience == "personal":
            return actor.user == self.registrant
        if actor.platform_admin or self.audience == "everyone":
            return True
        if self.audience == "run":
            return actor.user == self.registrant or (self.team is not None and actor.team == self.team)
        return not self.private or actor.team == self.team

    def __str__(self) -> str:
        return self.key


@dataclass
class World:
    root: Path
    actors: dict[str, Actor]
    users: dict[str, Any]
    teams: dict[str, Any]
    entities: dict[tuple[str, str], Entity]  # (instance key, kind) -> entity
    locations: dict[str, Location]
    requests: dict[str, Any]
    runs: dict[str, Any]
    tokens: dict[str, Any]  # username -> APIToken row
    new_location_dir: Path
    markers: dict[str, str]  # instance key -> marker
    queued_builds: list[str] = field(default_factory=list)  # refs whose docs build was queued
    feedback: dict[str, Any] = field(default_factory=dict)  # instance key -> feedback item on its component
    incidents: dict[str, Any] = field(default_factory=dict)  # instance key -> incident on its component

    def hidden_markers(self, actor: Actor) -> list[str]:
        """Markers of the private instances the actor may not see (all of them when signed out)."""
        if actor.platform_admin:
            return []
        return [self.markers[key] for key, (_, team, private) in INSTANCES.items()
                if private and actor.team != team]


def _descriptors(prefix: str, owner: str, private: bool, depends_on: list[str]) -> str:
    annotations = "    plinth.dev/visibility: private\n" if private else ""
    deps = "".join(f"    - {ref}\n" for ref in depends_on)
    return textwrap.dedent("""\
        apiVersion: plinth.dev/v1alpha1
        kind: Model
        metadata:
          name: {p}-model
          title: {p} model
          annotations:
        {a}    mlflow.org/registered-model: {p}-model
        spec:
          type: classifier
          lifecycle: experimental
          owner: {o}
        ---
        apiVersion: backstage.io/v1alpha1
        kind: Component
        metadata:
          name: {p}-svc
          title: {p} service
          annotations:
        {a}    plinth.dev/techdocs-ref: dir:./docs
        spec:
          type: service
          lifecycle: production
          owner: {o}
          dependsOn:
        {d}---
        apiVersion: backstage.io/v1alpha1
        kind: API
        metadata:
          name: {p}-api
          annotations:
        {a}    plinth.dev/placeholder: "x"
        spec:
          type: openapi
          lifecycle: production
          owner: {o}
          definition:
            $text: ./api.yaml
        ---
        apiVersion: scaffolder.backstage.io/v1beta3
        kind: Template
        metadata:
          name: {p}-template
          title: {p} template
          annotations:
        {a}    plinth.dev/placeholder: "x"
        spec:
          owner: {o}
          type: service
          parameters: []
          steps:
            - id: log
              name: Log
              action: debug:log
              input:
                message: hello
        """).format(p=prefix, o=owner, a=annotations, d=deps or "    []\n")


PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
       b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")


def _orphan_to_be(prefix: str, owner: str, private: bool) -> str:
    annotations = "  annotations: {plinth.dev/visibility: private}\n" if private else ""
    return (f"---\napiVersion: plinth.dev/v1alpha1\nkind: Dataset\nmetadata:\n  name: {prefix}-orphan\n"
            f"{annotations}spec:\n  owner: {owner}\n")


def _write_repo(folder: Path, prefix: str, owner: str, private: bool, depends_on: list[str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "catalog-info.yaml").write_text(_descriptors(prefix, owner, private, depends_on))
    (folder / "api.yaml").write_text(f"openapi: 3.0.3\ninfo: {{title: {prefix} api, version: '1'}}\npaths: {{}}\n")
    docs = folder / "docs"
    (docs / "img").mkdir(parents=True)
    (docs / "index.md").write_text(f"# {prefix} docs\n\nSee [the guide](guide.md).\n\n![logo](img/logo.png)\n")
    (docs / "guide.md").write_text(f"# {prefix} guide\n\nHow to use it.\n")
    (docs / "img" / "logo.png").write_bytes(PNG)
    return folder / "catalog-info.yaml"


def _user(username: str, **extra) -> Any:
    return UserFactory(username=username, **extra)


def build(root: Path) -> World:
    teams = {OWN: TeamFactory(name=OWN), OTHER: TeamFactory(name=OTHER)}
    users: dict[str, Any] = {}
    actors: dict[str, Actor] = {"anonymous": Actor("anonymous"),
                                "bad_token": Actor("bad_token", token="plinth_deadbeef_" + "x" * 43)}
    for key, team, role in [("viewer_other", OTHER, Role.VIEWER), ("member", OWN, Role.MEMBER),
                            ("maintainer", OWN, Role.MAINTAINER), ("reviewer", OWN, Role.REVIEWER),
                            ("team_admin", OWN, Role.ADMIN)]:
        user = _user(f"mx-{key.replace('_', '-')}")
        MembershipFactory(user=user, team=teams[team], role=role)
        users[key] = user
        actors[key] = Actor(key, user=user, team=team, role=role)
    padmin = _user("mx-platform-admin", is_superuser=True, is_staff=True)
    users["platform_admin"] = padmin
    actors["platform_admin"] = Actor("platform_admin", user=padmin, platform_admin=True)
    # Non-actors: who registered the locations and filed the other team's requests.
    for key, team in [("own_registrant", OWN), ("other_registrant", OTHER)]:
        users[key] = _user(f"mx-{key.replace('_', '-')}")
        MembershipFactory(user=users[key], team=teams[team], role=Role.MEMBER)

    tokens = {}
    for key, user in users.items():
        row, raw = account_services.token_create(user=user, name=f"{key} token")
        tokens[user.username] = row
        if key in actors:
            actors[key].token = raw

    markers = {key: prefix for key, (prefix, _, _) in INSTANCES.items()}
    world = World(root=root, actors=actors, users=users, teams=teams, entities={}, locations={}, requests={},
                  runs={}, tokens=tokens, new_location_dir=root / "repos" / "loc-mxnew", markers=markers)
    _write_repo(world.new_location_dir, "mxnew", OWN, False, [])
    add_objects(world)
    for key, user in users.items():
        Notification.objects.create(user=user, request=world.requests["public"], key=f"mx:{key}", kind="review",
                                    message="A request waits for you")
    return world


def add_objects(world: World, suffix: str = "") -> World:
    """One location, entities, docs, approval request and scaffolder run per instance key, named with the
    instance's marker + `suffix`. The world keeps the first set; the N+1 probe adds a second one."""
    users, repos = world.users, world.root / "repos"
    entities: dict[tuple[str, str], Entity] = {}
    for key, (marker, owner, private) in INSTANCES.items():
        prefix = marker + suffix
        registrant = users["own_registrant" if owner == OWN else "other_registrant"]
        # The private components depend on the public one: the public component then has relations
        # (dependencyOf) to both, stored on its side, which only their teams may see.
        deps = [] if key == "public" else [f"component:mxpub{suffix}-svc"]
        target = _write_repo(repos / f"loc-{prefix}", prefix, owner, private, deps)
        descriptors = target.read_text()
        # A dataset its file then drops: kept by the (default) `keep` strategy, an orphan.
        target.write_text(descriptors + _orphan_to_be(prefix, owner, private))
        plan = catalog_services.location_register(target=str(target), actor=registrant,
                                                  file_roots=[str(world.root)])
        assert not plan.errors, [str(e) for e in plan.errors]
        target.write_text(descriptors)
        catalog_services.location_refresh(location=plan.location)
        world.locations.setdefault(key, plan.location)
        for kind in ("model", "component", "api", "template"):
            name = f"{prefix}-{'svc' if kind == 'component' else kind}"
            entities[key, kind] = Entity.objects.get(ref=f"{kind}:default/{name}")
        entities[key, "orphan"] = Entity.objects.get(ref=f"dataset:default/{prefix}-orphan", orphan=True)
        # v1 has its MLflow run synced (with an input dataset), v2 not: the run endpoint answers for v1.
        run = ExperimentRun.objects.create(run_id=f"{prefix}-run1", name=f"{prefix}-run", metrics={"auc": 0.81})
        RunInput.objects.create(run=run, name=f"{prefix}-data", namespace="s3://mx", dataset_name=f"{prefix}/data")
        for n in (1, 2):
            ModelVersion.objects.create(entity=entities[key, "model"], version=str(n), version_number=n,
                                        aliases=["champion"] if n == 1 else [], metrics={"auc": 0.8 + n / 100},
                                        run_id=f"{prefix}-run{n}", status="READY",
                                        experiment_run=run if n == 1 else None)
        techdocs_services.entity_docs_build(entity=entities[key, "component"])
    for item, entity in entities.items():
        world.entities.setdefault(item, entity)

    # Approval requests (deprecate each model), in review at the owner team's stage. The own team's
    # is filed by the member actor (who may withdraw it); the others by the other team's registrant.
    for key, (_, owner, _) in INSTANCES.items():
        requester = users["member"] if owner == OWN else users["other_registrant"]
        req = governance_services.request_create(actor=requester, action="deprecate",
                                                 target=entities[key, "model"].ref, justification="matrix")
        governance_services.request_evaluate_gates(request_id=req.pk)
        req.refresh_from_db()
        assert req.state == "in-review", (key, req.state, req.gate_error)
        world.requests.setdefault(key, req)

    # Scaffolder runs: one for the own team, one for the other team, one personal run of another user.
    template_entity = entities["public", "template"]
    template = from_entity(template_entity)
    for key, creator, team in [("own_team", "own_registrant", OWN), ("other_team", "other_registrant", OTHER),
                               ("personal_other", "other_registrant", None)]:
        run = scaffolder_services.run_create(template=template, entity=template_entity, actor=users[creator],
                                             parameters={}, secret_values={}, dry_run=False,
                                             owner_team=world.teams[team] if team else None)
        _write_zip(run.uid)
        _publish_repository(run.uid, key)
        world.runs.setdefault(key, run)

    # Feedback with a comment on each component (a roadmap item), given by a non-actor of its team.
    for key, (_, owner, _) in INSTANCES.items():
        author = users["own_registrant" if owner == OWN else "other_registrant"]
        item, _ = feedback_services.feedback_give(actor=author, kind="entity", target=entities[key, "component"].ref,
                                                  useful=False, comment="matrix feedback")
        world.feedback.setdefault(key, item)

    # An incident on each component (its owner and visibility), opened by a non-actor of its team.
    for key, (_, owner, _) in INSTANCES.items():
        opener = users["own_registrant" if owner == OWN else "other_registrant"]
        incident, _ = incident_services.incident_open(actor=opener, title="matrix incident", severity="sev3",
                                                      entities=[entities[key, "component"].ref])
        world.incidents.setdefault(key, incident)

    index.rebuild()
    return world


def _publish_repository(run_uid, key: str) -> None:
    """A repository the run published (`mx/mx-<key>`), its bundle in the storage."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    from portal.scaffolder.models import PublishedRepository

    repository, _ = PublishedRepository.objects.update_or_create(
        owner="mx", name=f"mx-{key}", defaults={"run_uid": run_uid, "branch": "main", "commit": "a" * 40})
    storages["default"].delete(scaffolder_downloads.bundle_name(repository))
    storages["default"].save(scaffolder_downloads.bundle_name(repository), ContentFile(b"# v2 git bundle\n"))


def _write_zip(run_uid) -> None:
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.md", "generated\n")
    storages["default"].delete(scaffolder_downloads.name(run_uid))
    storages["default"].save(scaffolder_downloads.name(run_uid), ContentFile(buffer.getvalue()))
