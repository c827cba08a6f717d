"""Health probes, metrics, the CSP report endpoint and the friendly error pages."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from . import csp, health, metrics, throttling
from .client_address import client_address, throttle_key
from .db import lock_not_available
from .errors import error_response
from .limits import body_limit

csp_log = logging.getLogger("plinth.csp")
# What a 503 for a lost database connection asks clients to wait (PostgreSQL restarts in seconds).
DATABASE_RETRY_AFTER_SECONDS = 5
LOCK_RETRY_AFTER_SECONDS = 30  # a first large import holds its tables for up to about a minute
CSP_REPORT_TYPES = {"application/csp-report", "application/reports+json", "application/json"}


@login_not_required
@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@login_not_required
@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    checks = health.run_checks()
    ready = all(c["status"] == "ok" for c in checks.values())
    return JsonResponse({"status": "ready" if ready else "not ready", "checks": checks}, status=200 if ready else 503)


@login_not_required
@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    body, content_type = metrics.render()
    return HttpResponse(body, content_type=content_type)


# Browsers post reports without a CSRF token, and signed-out pages (sign-in) report too. What keeps
# this open door cheap: a small body cap (enforced by RequestBodyLimitMiddleware before anything reads
# the body), a rate per client address (the "csp-report" scope), and a bounded log line per report.
@body_limit(lambda: settings.PLINTH_CSP_REPORT_MAX_BYTES)
@csrf_exempt
@login_not_required
@require_POST
def csp_report(request: HttpRequest) -> HttpResponse:
    content_type = request.content_type or ""
    if content_type not in CSP_REPORT_TYPES:
        return _refuse("content_type", 415, f"Content-Type must be one of {', '.join(sorted(CSP_REPORT_TYPES))}.")
    refusal = throttling.hit("csp-report", f"addr:{throttle_key(client_address(request))}", "address")
    if refusal is not None:
        response = _refuse("rate_limited", 429, refusal.message)
        response["Retry-After"] = str(refusal.wait)
        return response
    try:
        violations = csp.parse_reports(request.body, content_type)
    except csp.ReportError as exc:
        return _refuse("malformed", 400, f"Not a CSP report: {exc}")
    for v in violations:
        metrics.CSP_VIOLATIONS.labels(directive=v.metric_directive).inc()
        csp_log.warning(
            "CSP violation (%s): %s blocked %s on %s (source %s, line %s) %s",
            v.disposition or "enforce", v.directive, v.blocked or "-", v.document or "-", v.source or "-",
            v.line if v.line is not None else "-", repr(v.sample) if v.sample else "",
        )
    return HttpResponse(status=204)


def _refuse(reason: str, status: int, message: str) -> JsonResponse:
    metrics.CSP_REPORTS_REFUSED.labels(reason=reason).inc()
    return JsonResponse({"error": {"status": status, "message": message}}, status=status)



def bad_request(request, exception=None):
    # Django's own request-size guards end here as SuspiciousOperation; name the limit instead.
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return error_response(request, 413, "Request too large",
                      f"The request body is too large: at most {limit:,} bytes.", limit=limit)
    if isinstance(exception, TooManyFieldsSent | TooManyFilesSent):
        return error_response(request, 400, "Bad request", f"The request has too many form fields or files "
                      f"(at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS:,} fields, "
                      f"{settings.DATA_UPLOAD_MAX_NUMBER_FILES:,} files).")
    return error_response(request, 400, "Bad request", "The request could not be understood.")


def permission_denied(request, exception=None):
    detail = str(exception) if exception and str(exception) else "You do not have permission to do that."
    return error_response(request, 403, "Not allowed", detail)


def page_not_found(request, exception=None):
    return error_response(request, 404, "Not found", "There is nothing here, or you may not see it.")


def server_error(request):
    # Django calls this inside the `except` that caught the error, from any layer (a view, a middleware
    # loading the session): a lost or refused database connection (PostgreSQL restarting, failing
    # over) is the service being unavailable for a moment, not a bug: 503 with a Retry-After, and the
    # request's transaction was rolled back with it.
    failure, retry_after = sys.exc_info()[1], DATABASE_RETRY_AFTER_SECONDS
    if isinstance(failure, OperationalError) and lock_not_available(failure):
        # A web request gave up waiting for a lock (`portal.core.db.serve_web_requests`): most often a
        # first large import into a small catalog, which holds its tables until it commits.
        status, title = 503, "Busy for a moment"
        message = ("Another operation (a large catalog import, for one) is holding what this page reads. "
                   "Nothing was changed; try again in a minute.")
        retry_after = LOCK_RETRY_AFTER_SECONDS
    elif isinstance(failure, OperationalError | InterfaceError):
        status, title = 503, "Temporarily unavailable"
        message = "The database cannot be reached right now. Nothing was changed; try again in a few seconds."
    else:
        status, title = 500, "Something went wrong"
        message = "The error was logged with the request id below. Please try again."
    try:
        response = error_response(request, status, title, message)
    except Exception:  # the page's own context (session, database) may be what failed
        logging.getLogger("plinth.errors").exception("the error page could not be rendered; minimal page served")
        html = render_to_string("error_minimal.html", {"status": status, "title": title, "message": message})
        response = HttpResponse(html, status=status)
    if status == 503:
        response["Retry-After"] = str(retry_after)
    return response


@login_not_required
def csrf_failure(request, reason=""):
    return error_response(request, 403, "Request refused",
                          "The form was missing its security token (CSRF). Reload the page and try again.")
