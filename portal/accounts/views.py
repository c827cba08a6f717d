"""Sign-in, sign-out, API tokens and team pages."""

from __future__ import annotations

import logging

from django.conf import settings
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

from . import extensions, oidc, selectors, services
from .forms import SignInForm, TokenCreateForm
from .models import Team

GENERIC_FAILURE = "Sign-in failed: the user name or password is not right."
LOCAL_OFF = "Password sign-in is turned off here: sign in with single sign-on."
log = logging.getLogger("plinth.accounts")


def _safe_next(request: HttpRequest, next_url: str) -> str:
    if next_url and url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        return next_url
    return ""


@login_not_required
@body_limit(FORM)
@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    """401 for a wrong name or password (the same for both), 429 with Retry-After while a lock is
    in force: the page says which lock (account or address) and how long until the next try."""
    form = SignInForm(request.POST or None)
    status, retry_after = 200, None
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    local = settings.PLINTH_LOCAL_LOGIN
    if request.method == "POST" and local == "off":
        status = 403
        form.is_valid()  # bound, so that the refusal can be shown as the form's error
        form.add_error(None, LOCAL_OFF)
    elif request.method == "POST":
        status = 400
        if form.is_valid():
            username = form.cleaned_data["username"]
            attempt = services.sign_in_begin(username=username, address=client_address(request))
            if attempt.lock is not None:
                status, retry_after = 429, attempt.lock.retry_after()
                form.add_error(None, attempt.lock.message)
            else:
                user = authenticate(request, username=username, password=form.cleaned_data["password"])
                if user is not None and local == "admins" and not user.is_superuser:
                    user = None  # break-glass only: to everyone else it is a wrong password (the page says so)
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
                    return redirect(_safe_next(request, next_url) or settings.LOGIN_REDIRECT_URL)
    context = {"form": form, "next": next_url, "local_login": local, "sso": oidc.enabled()}
    response = render(request, "accounts/sign_in.html", context, status=status)
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
    """Ends the portal's session; after a single sign-on, also the provider's when its discovery document
    has an `end_session_endpoint` (RP-initiated logout: it sends the browser back to the sign-in page)."""
    id_token = request.session.get(oidc.SESSION_ID_TOKEN)
    services.sign_out(user=request.user, address=client_address(request))
    logout(request)
    messages.info(request, "You are signed out.")
    if id_token:
        url = oidc.end_session_url(id_token, request.build_absolute_uri(reverse("accounts:login")))
        if url:
            return redirect(url)
    return redirect("accounts:login")


@login_not_required
@require_safe
def oidc_start(request: HttpRequest) -> HttpResponse:
    """To the identity provider (authorization code flow with PKCE); 404 when single sign-on is off."""
    if not oidc.enabled():
        raise Http404("Single sign-on is not configured.")
    next_url = _safe_next(request, request.GET.get("next") or "")
    try:
        response = oidc.begin(request, request.build_absolute_uri(reverse("accounts:oidc-callback")))
    except oidc.OIDCError as exc:
        return _oidc_refused(request, exc.status, exc.message, exc.reason)
    request.session[oidc.SESSION_NEXT] = next_url
    return response


@login_not_required
@require_safe
def oidc_callback(request: HttpRequest) -> HttpResponse:
    """The provider's answer: verified claims → a user (just in time) → signed in. Every refusal is a
    page with a 4xx (5xx only when the provider cannot be reached) that names what failed."""
    if not oidc.enabled():
        raise Http404("Single sign-on is not configured.")
    address = client_address(request)
    try:
        answer = oidc.finish(request)
        user = services.oidc_sign_in(issuer=answer.issuer, claims=answer.claims, address=address)
    except oidc.OIDCError as exc:
        return _oidc_refused(request, exc.status, exc.message, exc.reason)
    except services.SignInRefused as exc:
        return _oidc_refused(request, exc.status, exc.message, exc.reason)
    next_url = _safe_next(request, request.session.get(oidc.SESSION_NEXT) or "")
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[oidc.SESSION_ID_TOKEN] = answer.id_token  # server-side session: for sign-out only
    return redirect(next_url or settings.LOGIN_REDIRECT_URL)


def _oidc_refused(request: HttpRequest, status: int, message: str, reason: str) -> HttpResponse:
    log.warning("single sign-on refused: %s", reason)  # the reason code only: never a token or code
    services.oidc_sign_in_refused(reason=reason, address=client_address(request))
    context = {"status": status, "message": message, "local_login": settings.PLINTH_LOCAL_LOGIN}
    response = render(request, "accounts/sign_in_refused.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


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
    context = {
        "team": team,
        "members": selectors.team_members(team),
        "sections": extensions.sections_for(request, team),  # what the team owns: the catalog's
    }
    return render(request, "accounts/team_detail.html", context)
