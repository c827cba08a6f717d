"""Reads of the scaffolder, always filtered by the permission module."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from catalog import selectors as catalog_selectors
from catalog.descriptors.refs import parse_ref
from catalog.models import Entity
from portal.accounts import permissions
from portal.accounts.models import Team

from . import conf
from .models import PublishedRepository, Run, RunLog


def templates_for(user) -> QuerySet[Entity]:
    return catalog_selectors.visible_entities(user).filter(kind_key="template")


def owner_ref(value: str) -> str:
    """The owner ref a template filter's `owner` names, matched exactly (a suffix would let `team` match
    `group:default/otherteam`): read as any entity reference (`parse_ref`: a group in the default
    namespace unless it says otherwise). A malformed one is kept as typed, so it matches nothing."""
    try:
        return parse_owner_ref(value)
    except ValueError:
        return value.strip().lower()


def parse_owner_ref(value: str) -> str:
    """owner_ref() for the API, which refuses a malformed `owner` (ValueError, parse_ref's message)
    rather than matching nothing."""
    return parse_ref(value.strip(), default_kind="group").key()


def owner_label(ref: str) -> str:
    """The shortest spelling of an owner ref that owner_ref() reads back as it (the Create page's facet)."""
    for prefix in ("group:default/", "group:"):
        if ref.startswith(prefix) and ":" not in ref[len(prefix):]:
            return ref[len(prefix):]
    return ref


def template_entity(user, namespace: str, name: str) -> Entity | None:
    return catalog_selectors.entity_by_name(user, "template", namespace, name)


def runs_for(user) -> QuerySet[Run]:
    return Run.objects.filter(permissions.visible_runs_q(user))


def recent_runs_of(user) -> QuerySet[Run]:
    """The user's own runs, newest first (the home page)."""
    return runs_for(user).filter(created_by=user).order_by("-created_at")


def run_for(user, uid) -> Run | None:
    return runs_for(user).filter(uid=uid).first()


def run_log(run: Run) -> tuple[list[RunLog], int]:
    """The first MAX_LOG_LINES lines of the run's log and how many it has in all (counted only when the
    page is full: one query for a short log, two for a cut one)."""
    limit = conf.max_log_lines()
    lines = list(run.logs.all()[:limit])
    return lines, run.logs.count() if len(lines) >= limit else len(lines)


def published(owner: str, name: str) -> PublishedRepository | None:
    """A repository whose publication finished (a row with its commit), else None."""
    return PublishedRepository.objects.filter(owner=owner, name=name).exclude(commit="").first()


def published_repository(user, owner: str, name: str) -> PublishedRepository | None:
    """A published repository whose run `user` may see, else None."""
    repository = published(owner, name)
    if repository is None or not runs_for(user).filter(uid=repository.run_uid).exists():
        return None
    return repository


def registrable_repository(user, run_uid, owner: str, name: str) -> PublishedRepository | None:
    """A published repository catalog:register of the run `run_uid` may read: one that run published (an
    earlier attempt included), or one whose run `user` may see in the namespace of a team `user` may
    create for (a team's own repository, published earlier). Else None, as for a missing one."""
    repository = published(owner, name)
    if repository is None or repository.run_uid == run_uid:
        return repository
    team_id = Team.objects.filter(name__iexact=repository.owner).values_list("pk", flat=True).first()
    if team_id is None or not permissions.may_create_for_team(user, team_id):
        return None
    return repository if runs_for(user).filter(uid=repository.run_uid).exists() else None


def known_repositories_q(user) -> Q:
    """The published repositories `user` may know exist: those whose run they may see, and every one in
    the namespace of a team they are in (publishing there would clash with it). Another team's private
    repository is not among them: its name answers as free."""
    if permissions.is_platform_admin(user):
        return Q()
    own = Team.objects.filter(pk__in=permissions.team_ids(user)).values("name")
    return Q(run_uid__in=runs_for(user).values("uid")) | Q(owner__in=own)


def name_clashes(user, name: str, owner: str | None) -> list[str]:
    """Why `name` cannot be used for a new project, checked before the run rather than at publish: an
    entity of that name the user can see (a private one of another team answers as missing, as
    everywhere), or a repository of that name the user may know of (`known_repositories_q`) already
    published for the owner (any owner if none chosen yet)."""
    problems = []
    taken = (catalog_selectors.visible_entities(user).filter(name_key=name.lower())
             .order_by("kind_key").values_list("kind", "namespace", "name")[:3])
    for kind, namespace, entity_name in taken:
        problems.append(f"The catalog already has a {kind} named {entity_name} (namespace {namespace}).")
    repositories = PublishedRepository.objects.filter(known_repositories_q(user), name=name)
    if owner:
        repositories = repositories.filter(owner=owner)
    for who in repositories.order_by("owner").values_list("owner", flat=True)[:3]:
        problems.append(f"A repository {who}/{name} already exists.")
    return problems
