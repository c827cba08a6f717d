"""Home page, health probes, metrics and the friendly error pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from portal.accounts import selectors as account_selectors

from . import health, metrics


def home(request: HttpRequest) -> HttpResponse:
    from catalog import selectors as catalog_selectors
    from portal.governance import selectors as governance_selectors

    memberships = list(account_selectors.teams_of(request.user))
    context = {
        "pending_reviews": governance_selectors.inbox(request.user)[:8],
        "memberships": memberships,
        "my_assets": catalog_selectors.owned_by_user_teams(request.user)[:12],
        "starred": catalog_selectors.starred_by(request.user)[:8],
        "catalog_counts": catalog_selectors.kind_counts(request.user),
    }
    return render(request, "core/home.html", context)


@login_not_required
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    checks = health.run_checks()
    ready = all(c["status"] == "ok" for c in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


@login_not_required
@never_cache
def metrics_view(request: HttpRequest) -> HttpResponse:
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)


def _error(request: HttpRequest, status: int, title: str, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"status": status, "message": message}}, status=status)
    return render(request, "error.html", {"status": status, "title": title, "message": message}, status=status)


def bad_request(request, exception=None):
    return _error(request, 400, "Bad request", "The request could not be understood.")


def permission_denied(request, exception=None):
    detail = str(exception) if exception and str(exception) else "You do not have permission to do that."
    return _error(request, 403, "Not allowed", detail)


def page_not_found(request, exception=None):
    return _error(request, 404, "Not found", "There is nothing here, or you may not see it.")


def server_error(request):
    return _error(request, 500, "Something went wrong",
                  "The error was logged with the request id below. Please try again.")


@login_not_required
def csrf_failure(request, reason=""):
    return _error(request, 403, "Request refused",
                  "The form was missing its security token (CSRF). Reload the page and try again.")
