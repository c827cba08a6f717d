"""Reads of the scaffolder, always filtered by the permission module."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from catalog import selectors as catalog_selectors
from catalog.models import Entity
from portal.accounts.permissions import is_platform_admin, visible_q

from .models import Run


def templates_for(user) -> QuerySet[Entity]:
    return catalog_selectors.visible_entities(user).filter(kind_key="template")


def template_entity(user, namespace: str, name: str) -> Entity | None:
    return catalog_selectors.entity_by_name(user, "template", namespace, name)


def runs_for(user) -> QuerySet[Run]:
    """A run is private: its creator, members of the team it was created for, and platform admins."""
    if not (user and user.is_authenticated):
        return Run.objects.none()
    if is_platform_admin(user):
        return Run.objects.all()
    return Run.objects.filter(Q(created_by=user) | visible_q(user))


def run_for(user, uid) -> Run | None:
    return runs_for(user).filter(uid=uid).first()
