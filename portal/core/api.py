"""API conventions shared by every app: the error envelope and the base permission."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from . import throttling


def exception_handler(exc, context):
    """Every API error reads `{"error": {"status", "message", "details"?}}`."""
    request = context.get("request")
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)) and request is not None:
        # Anonymous callers never reach the throttles (DRF checks permissions first): count them here.
        refusal = throttling.count_unauthenticated(request)
        if refusal is not None:
            request._request.rate_limit_refusal = refusal
            exc = exceptions.Throttled(refusal.wait)
    if isinstance(exc, ValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or "Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    refusal = getattr(getattr(request, "_request", None), "rate_limit_refusal", None)
    if isinstance(exc, exceptions.Throttled) and refusal is not None:
        response.data = {"error": {"status": 429, "message": refusal.message, "scope": refusal.scope,
                                   "limit": refusal.limit, "periodSeconds": refusal.period,
                                   "retryAfter": refusal.wait}}
        return response
    if isinstance(data, dict) and set(data) == {"detail"}:
        body = {"status": response.status_code, "message": str(data["detail"])}
    else:
        body = {"status": response.status_code, "message": _summary(data), "details": data}
    response.data = {"error": body}
    return response


def _summary(data) -> str:
    if isinstance(data, dict):
        first_key = next(iter(data), None)
        if first_key is None:
            return "Invalid request."
        value = data[first_key]
        if isinstance(value, list) and value:
            value = value[0]
        return f"{first_key}: {value}" if first_key != "non_field_errors" else str(value)
    if isinstance(data, list) and data:
        return str(data[0])
    return "Invalid request."


def conflict(message: str, **extra) -> Response:
    return Response({"error": {"status": 409, "message": message, **extra}}, status=status.HTTP_409_CONFLICT)
