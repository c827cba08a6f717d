"""Reads of the scaffolder, always filtered by the permission module."""

from __future__ import annotations

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
