"""Sign-in, sign-out, API tokens and team pages."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from portal.core.client_address import client_address
from portal.core.limits import FORM, body_limit

from . import selectors, services
from .forms import SignInForm, TokenCreateForm
from .models import Team

GENERIC_FAILURE = "Sign-in failed: the user name or password is not right."


@login_not_required
@body_limit(FORM)
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    """401 for a wrong name or password (the same for both), 429 with Retry-After while a lock is
    in force: the page says which lock (account or address) and how long until the next try."""
    form = SignInForm(request.POST or None)
    status, retry_after = 200, None
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.method == "POST":
        status = 400
        if form.is_valid():
            username = form.cleaned_data["username"]
            attempt = services.sign_in_begin(username=username, address=client_address(request))
            if attempt.lock is not None:
                status, retry_after = 429, attempt.lock.retry_after()
                form.add_error(None, attempt.lock.message)
            else:
                user = authenticate(request, username=username, password=form.cleaned_data["password"])
                if user is None:
                    lock = services.sign_in_failed(attempt=attempt)
                    status = 401
                    form.add_error(None, GENERIC_FAILURE)
                    if lock is not None:
                        status, retry_after = 429, lock.retry_after()
                        form.add_error(None, lock.message)
                else:
                    services.sign_in_succeeded(user=user, attempt=attempt)
                    login(request, user)
                    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
                        next_url = ""
                    return redirect(next_url or "core:home")
    response = render(request, "accounts/sign_in.html", {"form": form, "next": next_url}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@login_not_required
@require_http_methods(["GET", "POST"])
def admin_sign_in(request: HttpRequest) -> HttpResponse:
    """The admin site signs in through the portal's page, so its throttle and audit apply there too."""
    next_url = request.GET.get("next") or "/admin/"
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        next_url = "/admin/"
    if request.user.is_authenticated:
        if admin.site.has_permission(request):  # the admin's own rule (active staff)
            return redirect(next_url)
        # The admin sends signed-in users without staff status here; the sign-in page would not help.
        raise PermissionDenied("The admin site is for staff accounts.")
    return redirect(f"{reverse('accounts:login')}?{urlencode({'next': next_url})}")


@body_limit(FORM)
@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    services.sign_out(user=request.user, address=client_address(request))
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:login")


@body_limit(FORM)
@require_http_methods(["GET", "POST"])
def token_list(request: HttpRequest) -> HttpResponse:
    form = TokenCreateForm(request.POST or None)
    new_token = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            _, new_token = services.token_create(
                user=request.user, name=form.cleaned_data["name"],
                expires_in_days=form.cleaned_data["expires_in_days"], address=client_address(request),
            )
            form = TokenCreateForm()
        else:
            status = 400
    context = {"form": form, "tokens": selectors.tokens_of(request.user), "new_token": new_token}
    response = render(request, "accounts/token_list.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


@body_limit(FORM)
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = selectors.token_of(request.user, pk)
    if token is None:
        raise Http404("No such token")
    services.token_revoke(token=token, actor=request.user, address=client_address(request))
    messages.success(request, f"Token “{token.name}” revoked.")
    return redirect("accounts:tokens")


@require_safe
def team_list(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/team_list.html", {"teams": selectors.team_list()})


@require_safe
def team_detail(request: HttpRequest, name: str) -> HttpResponse:
    team = get_object_or_404(Team, name=name)
    from catalog import selectors as catalog_selectors

    context = {
        "team": team,
        "members": selectors.team_members(team),
        "owned": catalog_selectors.owned_by_team(team, request.user)[:50],
    }
    return render(request, "accounts/team_detail.html", context)
