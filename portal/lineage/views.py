"""The "unowned assets" page: observed entities (and MLflow-only models) nobody owns, for platform
admins to give an owner team."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from catalog.descriptors.errors import DescriptorError
from catalog.models import Entity
from portal.accounts import permissions
from portal.accounts.models import Team

from . import selectors, services


@require_http_methods(["GET"])
def unowned(request):
    if not permissions.may_claim_unowned(request.user):
        raise PermissionDenied("Only platform admins may see and claim unowned assets.")
    page = Paginator(selectors.unowned_assets(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "lineage/unowned.html", {"page": page, "teams": Team.objects.order_by("name")})


@require_POST
def claim(request):
    if not permissions.may_claim_unowned(request.user):
        raise PermissionDenied("Only platform admins may claim unowned assets.")
    pk = request.POST.get("entity", "")
    entity = get_object_or_404(selectors.unowned_assets(request.user), pk=int(pk) if pk.isdigit() else 0)
    team = Team.objects.filter(pk=request.POST.get("team") or 0).first() if str(
        request.POST.get("team", "")).isdigit() else None
    if team is None:
        messages.error(request, "Choose the team that owns this asset.")
        return redirect("lineage:unowned")
    try:
        services.unowned_claim(entity=Entity.objects.get(pk=entity.pk), team=team, actor=request.user)
    except DescriptorError as exc:
        messages.error(request, str(exc))
        return redirect("lineage:unowned")
    messages.success(request, f"{entity.ref} is now owned by {team.name}.")
    return redirect("lineage:unowned")
