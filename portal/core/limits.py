"""Request body size limits: a global cap, and per-endpoint caps set with `@body_limit`.

`RequestBodyLimitMiddleware` decides before any view, form, parser or the CSRF check reads the
body, so an oversized request changes nothing and answers 413 naming the limit (JSON under
/api/, the error page elsewhere).

* `Content-Length` over the limit: refused without reading the body.
* A lying `Content-Length` (smaller than what follows): Django reads only the declared bytes,
  so the view sees a truncated body (a 400 from its parser), never more than the limit.
* `Transfer-Encoding: chunked` (no length): Django's WSGI request would read such a body as
  empty. Where the server marks the input as terminated (`wsgi.input_terminated`, gunicorn does),
  at most limit + 1 bytes are read here; over the limit is a 413, under it the body is handed on
  with its real length. Servers that cannot do that get a 411 (send a Content-Length).
"""

from __future__ import annotations

import io
from collections.abc import Callable

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpRequest, HttpResponse

from portal.core.numbers import digits

from .errors import error_response

KIB = 1024

# Named caps for the endpoints whose bodies are known to be small (or large).
FORM = 16 * KIB  # sign-in, sign-out, tokens, a location target, a refresh
COMMENT = 128 * KIB  # a 20,000-character comment, even with every character JSON-escaped
PARAMETERS = 256 * KIB  # scaffolder run parameters, an approval request with its justification


def body_limit(max_bytes: int | Callable[[], int]):
    """Give a view its own body cap (bytes, or a callable read per request, e.g. from settings).

    Put it above `@api_view`, so that it marks the view Django calls."""

    def mark(view):
        view.max_body_bytes = max_bytes
        return view

    return mark


def validate_limit() -> int:
    return settings.PLINTH_MAX_VALIDATE_BYTES


def upload_limit() -> int:
    return settings.PLINTH_MAX_UPLOAD_BYTES


def limit_for(view_func) -> int:
    limit = getattr(view_func, "max_body_bytes", None)
    if limit is None:
        return settings.PLINTH_MAX_REQUEST_BYTES
    return limit() if callable(limit) else limit


class RequestBodyLimitMiddleware:
    """Refuse request bodies over the view's cap (see the module docstring). Listed before
    CsrfViewMiddleware, whose check reads the form body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        return check_body(request, limit_for(view_func))


def check_body(request: HttpRequest, limit: int) -> HttpResponse | None:
    encoding = request.META.get("HTTP_TRANSFER_ENCODING", "").strip().lower()
    if encoding and encoding != "identity":
        return _read_unsized(request, limit)
    raw = request.META.get("CONTENT_LENGTH") or "0"
    if not digits(raw):
        return _refuse(request, 400, "Bad request", f"Content-Length {raw[:20]!r} is not a number of bytes.")
    length = int(raw)
    if length > limit:
        return _too_large(request, limit, length)
    return None


def _read_unsized(request: HttpRequest, limit: int) -> HttpResponse | None:
    if not request.META.get("wsgi.input_terminated"):
        return _refuse(request, 411, "Length required",
                       "This server needs a Content-Length header for request bodies (chunked uploads "
                       "are not supported here).", limit=limit)
    data = request.META["wsgi.input"].read(limit + 1)
    if len(data) > limit:
        return _too_large(request, limit, None)
    # Hand the body on as if it had been sent with its length: Django reads CONTENT_LENGTH bytes.
    request.META["CONTENT_LENGTH"] = str(len(data))
    request._stream = LimitedStream(io.BytesIO(data), len(data))  # type: ignore[attr-defined]
    return None


def _too_large(request: HttpRequest, limit: int, length: int | None) -> HttpResponse:
    sent = f" (this one has {length:,} bytes)" if length is not None else ""
    message = f"The request body is too large: this endpoint accepts at most {limit:,} bytes{sent}."
    return _refuse(request, 413, "Request too large", message, limit=limit)


def _refuse(request: HttpRequest, status: int, title: str, message: str, **extra) -> HttpResponse:
    return error_response(request, status, title, message, **extra)
