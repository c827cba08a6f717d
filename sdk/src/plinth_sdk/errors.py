"""Exceptions raised by the SDK. Every failure of a call is a `PlinthError`; the CLI maps each class to
one documented exit code (`plinth_sdk.cli.errors`).

API errors carry what the server's error envelope says (`{"error": {"status", "message", "details"?,
...}}`): the HTTP status, a short machine `code`, the `message`, the dotted `field` path of the first
failing field (`values.name`, `files[2].content`) and every other key of the envelope in `extra`
(e.g. a 409's `state`, a 429's `retryAfter`)."""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError", "AuthenticationError", "BadResponse", "ConfigError", "ConflictError", "NotFoundError",
    "PermissionDeniedError", "PlinthError", "RateLimitedError", "ServerError", "TLSError", "TimeoutError",
    "UnreachableError", "ValidationError", "WaitTimeout", "first_field",
]


class PlinthError(Exception):
    """Base of every SDK error."""


class ConfigError(PlinthError):
    """No server URL, an unknown profile, an unreadable config file; a URL that is not an http(s)
    address or a token that cannot be sent (its message never shows the token)."""


class UnreachableError(PlinthError):
    """The server could not be reached (connection refused, DNS, network)."""


class TLSError(UnreachableError):
    """The TLS handshake failed (an untrusted or mismatched certificate)."""


class TimeoutError(UnreachableError):  # noqa: A001 (the SDK's own, exported under its module)
    """The server did not answer in time."""


class BadResponse(PlinthError):
    """The server answered something that is not the API's JSON (a proxy's HTML page, a truncated body)."""

    def __init__(self, message: str, *, status: int, request_id: str | None = None):
        super().__init__(message)
        self.status, self.request_id = status, request_id


class WaitTimeout(PlinthError):
    """A waiting helper gave up before the object reached one of the wanted states."""

    def __init__(self, message: str, *, last: Any = None):
        super().__init__(message)
        self.last = last


CODES = {400: "invalid", 401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict",
         411: "length_required", 413: "too_large", 429: "rate_limited"}


class APIError(PlinthError):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str, *, details: Any = None, extra: dict | None = None,
                 request_id: str | None = None):
        self.status = status
        self.code = CODES.get(status, "server_error" if status >= 500 else "error")
        self.message = message
        self.details = details
        self.field = first_field(details)
        self.extra = extra or {}
        self.request_id = request_id
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message on one line (line breaks and runs of spaces collapsed), prefixed by its field."""
        text = " ".join(self.message.split())
        if self.field and not text.startswith(f"{self.field}:") and self.field not in {"non_field_errors"}:
            text = f"{self.field}: {text}"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, code={self.code!r}, message={self.message!r})"


class ValidationError(APIError):
    """400: a parameter or field is invalid; `field` names it."""


class AuthenticationError(APIError):
    """401: no token, or a wrong, expired or revoked one."""


class PermissionDeniedError(APIError):
    """403: signed in, but not allowed."""


class NotFoundError(APIError):
    """404: no such object, or one the caller may not see."""


class ConflictError(APIError):
    """409: the object's state does not allow this (`extra["state"]` names it)."""


class RateLimitedError(APIError):
    """429 after every retry."""


class ServerError(APIError):
    """5xx after every retry."""


_BY_STATUS = {400: ValidationError, 401: AuthenticationError, 403: PermissionDeniedError, 404: NotFoundError,
              409: ConflictError, 429: RateLimitedError}


def api_error(status: int, body: Any, request_id: str | None) -> APIError:
    """The exception for an error answer whose body is already parsed JSON."""
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict):
        message = body.get("detail") if isinstance(body, dict) and isinstance(body.get("detail"), str) else None
        envelope = {"message": message or f"HTTP {status}"}
        if isinstance(body, dict) and "errors" in body:  # validate-entity's 400 is a result, not an envelope
            envelope["details"] = body["errors"]
    extra = {k: v for k, v in envelope.items() if k not in {"status", "message", "details"}}
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else APIError)
    return cls(status, str(envelope.get("message") or f"HTTP {status}"), details=envelope.get("details"),
               extra=extra, request_id=request_id)


def first_field(details: Any, prefix: str = "") -> str | None:
    """The dotted path of the first failing field in an envelope's `details` (`{field: [messages]}`,
    nested like the input), e.g. `values.name` or `files[0].path`."""
    if isinstance(details, dict):
        for key, value in details.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return path
            deeper = first_field(value, path)
            return deeper or path
        return None
    if isinstance(details, list):
        for index, value in enumerate(details):
            if isinstance(value, dict) and "field" in value and "message" in value:
                return value.get("field") or None  # a validation result's error list
            if isinstance(value, (dict, list)) and value:
                return first_field(value, f"{prefix}[{index}]")
    return None
