"""The home page: what needs the signed-in person's attention, gathered from each app's selectors."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from catalog import recent
from catalog import selectors as catalog_selectors
from portal.accounts import selectors as account_selectors
from portal.governance import selectors as governance_selectors
from portal.scaffolder import selectors as scaffolder_selectors


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    memberships = list(account_selectors.teams_of(request.user))
    context = {
        "pending_reviews": governance_selectors.inbox(request.user)[:8],
        "my_requests": governance_selectors.open_mine(request.user)[:8],
        "recent_runs": scaffolder_selectors.recent_runs_of(request.user)[:5],
        "recently_viewed": recent.recently_viewed(request),
        "memberships": memberships,
        "my_assets": catalog_selectors.owned_by_user_teams(request.user)[:12],
        "starred": catalog_selectors.starred_by(request.user)[:8],
        "catalog_counts": catalog_selectors.kind_counts(request.user),
    }
    return render(request, "site/home.html", context)
