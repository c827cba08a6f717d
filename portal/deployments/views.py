"""Pages: the reviewers' compliance drift list (under /reviews/)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.views.decorators.http import require_safe

from portal.accounts import permissions

from . import selectors


@require_safe
def drift_list(request):
    if not permissions.may_see_drift_list(request.user):
        raise PermissionDenied("The drift list is for reviewers and platform admins")
    include_cleared = request.GET.get("show") == "all"
    drifts = list(selectors.drift_list(request.user, include_cleared=include_cleared)[:200])
    return render(request, "deployments/drift_list.html", {"drifts": drifts, "include_cleared": include_cleared})
