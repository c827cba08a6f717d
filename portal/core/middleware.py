"""Request id, access log, metrics, sign-in requirement and the browser-hardening headers."""

from __future__ import annotations

import logging
import time

from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.http import HttpRequest, HttpResponse, UnreadablePostError

from . import csp, metrics
from .client_address import client_address
from .errors import NUL_MESSAGE, error_response, nul_field
from .request_context import new_request_id, reset_request_id, set_request_id

access_log = logging.getLogger("plinth.access")

# Paths that serve machines (probes, metrics) or enforce auth themselves (the API: 401 JSON).
PUBLIC_PREFIXES = ("/healthz", "/readyz", "/metrics", "/api/", "/static/")


class RequestIdMiddleware:
    """Give every request an id, echo it in `X-Request-ID`, log one line per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = new_request_id(request.headers.get("X-Request-ID"))
        request.request_id = request_id  # type: ignore[attr-defined]
        token = set_request_id(request_id)
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        duration = time.perf_counter() - started
        response["X-Request-ID"] = request_id
        route = getattr(getattr(request, "resolver_match", None), "view_name", None) or "unmatched"
        metrics.observe_request(request.method or "GET", route, response.status_code, duration)
        if not request.path.startswith("/static/"):
            user = getattr(request, "user", None)
            access_log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "request_id": request_id,
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round(duration * 1000, 2),
                    "user": user.get_username() if user is not None and user.is_authenticated else None,
                    "remote_addr": client_address(request),
                },
            )
        return response


class PortalLoginRequiredMiddleware(LoginRequiredMiddleware):
    """Deny by default: every page needs a signed-in user, except the machine-facing paths."""

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith(PUBLIC_PREFIXES):
            return None
        return super().process_view(request, view_func, view_args, view_kwargs)


class SecurityHeadersMiddleware:
    """The CSP, its reporting endpoint, the Permissions-Policy and CORP on every response.

    Placed outside WhiteNoise, so static files carry them too. A view may have set a tighter
    Content-Security-Policy (built with `csp.policy(request, ...)`); it is kept. Referrer-Policy, nosniff
    and Cross-Origin-Opener-Policy come from Django's SecurityMiddleware (settings.SECURE_*)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", csp.policy(request))
        if request.is_secure():
            response.setdefault("Reporting-Endpoints", csp.reporting_endpoints())
        response.setdefault("Permissions-Policy", csp.PERMISSIONS_POLICY)
        # Nothing of the portal is meant to be loaded by other sites (scripts, images, JSON).
        response.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        return response


class RejectNulMiddleware:
    """400 for a NUL character in the path, a query parameter or a page's form field, naming where it is.

    PostgreSQL text cannot hold NUL, so such a value reaching a query is a 500 there (and silently
    works on SQLite). One check here covers every page, every page's form (a view reading
    `request.POST` directly, not through a Django form, would store it) and every API filter; API
    bodies are checked by the API's parsers (`portal.core.api`), which name the JSON field."""

    API_PREFIX = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return self._reject(request, "path")
        if (where := nul_field(request.GET)) is not None:
            return self._reject(request, where[:100])
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        """The form body is looked at here, once a view is found: after RequestBodyLimitMiddleware's
        `process_view` refused a body over the view's cap without reading it (and put a chunked body
        back as a sized one). Read in `__call__`, before the cap, a body of any size was parsed — files
        spooled to disk — even for a page that does not exist."""
        if request.method != "POST" or request.path.startswith(self.API_PREFIX):
            return None
        where = self._nul_in_form(request)
        return None if where is None else self._reject(request, where[:100])

    @staticmethod
    def _nul_in_form(request: HttpRequest) -> str | None:
        """The first form field with a NUL in its name or value. Django parses only form bodies
        (urlencoded, multipart) into `request.POST`, as the CSRF check just did (a malformed multipart
        body is Django's 400). Uploaded files are not text and are not looked at (Django drops
        non-printable characters from their names); a body the client stopped sending is left to the
        view."""
        try:
            return nul_field(request.POST)
        except UnreadablePostError:
            return None

    def _reject(self, request: HttpRequest, where: str) -> HttpResponse:
        return error_response(request, 400, "Bad request", f"{where}: {NUL_MESSAGE}",
                              details={where: [NUL_MESSAGE]})
