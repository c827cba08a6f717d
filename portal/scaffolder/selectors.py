"""Reads of the scaffolder, always filtered by the permission module."""

from __future__ import annotations

from pathlib import Path

from django.db.models import QuerySet

from catalog import selectors as catalog_selectors
from catalog.models import Entity
from portal.accounts import permissions

from .models import Run


def templates_for(user) -> QuerySet[Entity]:
    return catalog_selectors.visible_entities(user).filter(kind_key="template")


def template_entity(user, namespace: str, name: str) -> Entity | None:
    return catalog_selectors.entity_by_name(user, "template", namespace, name)


def runs_for(user) -> QuerySet[Run]:
    return Run.objects.filter(permissions.visible_runs_q(user))


def recent_runs_of(user) -> QuerySet[Run]:
    """The user's own runs, newest first (the home page)."""
    return runs_for(user).filter(created_by=user).order_by("-created_at")


def run_for(user, uid) -> Run | None:
    return runs_for(user).filter(uid=uid).first()


def name_clashes(user, name: str, owner: str | None) -> list[str]:
    """Why `name` cannot be used for a new project, checked before the run rather than at publish: an
    entity of that name the user can see (a private one of another team answers as missing, as
    everywhere), or a repository of that name already published for the owner (any owner if none
    chosen yet)."""
    from . import conf

    problems = []
    taken = (catalog_selectors.visible_entities(user).filter(name_key=name.lower())
             .order_by("kind_key").values_list("kind", "namespace", "name")[:3])
    for kind, namespace, entity_name in taken:
        problems.append(f"The catalog already has a {kind} named {entity_name} (namespace {namespace}).")
    repos = conf.publish_root() / "repos"
    owners = [owner] if owner else ([p.name for p in repos.iterdir() if p.is_dir()] if repos.is_dir() else [])
    for who in owners:
        if _repository_exists(repos, who, name):
            problems.append(f"A repository {who}/{name} already exists.")
    return problems


def _repository_exists(repos: Path, owner: str, name: str) -> bool:
    """Only plain names are looked up (the values are not validated yet when the wizard asks): a path
    separator or a leading dot is no repository, and a name too long for the file system cannot exist
    (the OS answers ENAMETOOLONG, which `exists()` raises rather than answering False)."""
    if any("/" in part or "\\" in part or part.startswith(".") or not part for part in (owner, name)):
        return False
    try:
        return (repos / owner / f"{name}.git").exists()
    except OSError:
        return False
