"""Request id, access log, metrics, sign-in requirement and the browser-hardening headers."""

from __future__ import annotations

import logging
import time
from urllib.parse import unquote

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.core.files.uploadhandler import FileUploadHandler
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, QueryDict, RawPostDataException, UnreadablePostError
from django.http.multipartparser import MultiPartParser, MultiPartParserError

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
        # The pattern's name, never the path: a path no pattern matches is one label, whatever it is.
        route = getattr(getattr(request, "resolver_match", None), "view_name", None) or "unmatched"
        metrics.observe_request(request.method, route, response.status_code, duration)
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


# -- form text ----------------------------------------------------------------------------------------
# Django reads a form field whose bytes are not text in the request's charset as something else: a raw
# byte turns an urlencoded body into ISO-8859-1 ("caf\xc3" → "cafÃ"), a %-escaped one or a multipart
# field's becomes U+FFFD ("caf%C3" → "caf\ufffd"), and either is stored as if the user had typed it.
# The rule, for pages (RejectNulMiddleware) and the API's form parsers (portal.core.api) alike: such a
# field is a 400 naming it. File contents are bytes and are not looked at. The query string follows the
# same rule (`query_string_not_text`, RejectNulMiddleware), for pages and the API: "?q=%C3" would be
# searched for as "\ufffd".


def not_text_message(encoding: str) -> str:
    return f'Not "{encoding}" text: some bytes (raw or %-escaped) are not a valid character; send UTF-8.'


def unreadable_charset_message(encoding: str) -> str:
    return f'The body cannot be read as "{encoding}" text: send UTF-8.'


def check_charset(encoding: str) -> None:
    """LookupError for a charset Django cannot read a form in: no text codec at all (hex), or one that
    cannot replace what it cannot decode (idna), which Django's parsers ask of it."""
    try:
        b"a".decode(encoding, "replace")
    except UnicodeError as exc:
        raise LookupError(str(exc)) from None


def _field_name(raw: str) -> str:
    """A field's name as shown in an error: its undecodable bytes as U+FFFD, a NUL escaped, cut short."""
    return (raw.replace("\x00", "\\x00") or "(unnamed)")[:100]


def form_field_not_text(body: bytes, encoding: str) -> str | None:
    """The name of the first field of an urlencoded body whose name or value is not text in `encoding`,
    raw or once its %-escapes are undone; None when every one is. Split on the bytes, as Python's
    parse_qsl splits the text Django decoded (no charset Django accepts has "&" inside a character).
    A charset that cannot be read (`check_charset`) is a LookupError for the caller."""
    check_charset(encoding)
    for chunk in body.split(b"&"):
        name, _, value = chunk.partition(b"=")
        try:
            for part in (name, value):
                unquote(part.decode(encoding).replace("+", " "), encoding, "strict")
        except (UnicodeError, ValueError):
            shown = unquote(name.decode(encoding, "replace").replace("+", " "), encoding, "replace")
            return _field_name(shown)
    return None


def query_string_not_text(query: bytes, encoding: str) -> str | None:
    """The first query parameter whose name or value is not text in `encoding` (named and judged as
    `form_field_not_text` does a form field); None when every one is, and at once for an empty query.

    In UTF-8 (what every request but one naming another charset uses) the whole string is checked in one
    strict decode, and its %-escapes in one more when it has any: no character's bytes hold "&" or "=",
    so the whole is text exactly when each parameter is. Only a query that is not text is split to name
    the parameter. A charset that cannot be read (`check_charset`) is a LookupError for the caller."""
    if not query:
        return None
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        try:
            text = query.decode("utf-8")
            if "%" in text:
                unquote(text, "utf-8", "strict")
            return None
        except UnicodeError:
            pass
    return form_field_not_text(query, encoding)


def _query_bytes(request: HttpRequest) -> tuple[bytes, str]:
    """The query string's bytes and the charset Django reads `request.GET` in. A WSGI server passes the
    bytes as ISO-8859-1 characters (PEP 3333) and Django decodes them in the request's charset; Django's
    ASGI handler has decoded them as UTF-8 already, and reads the %-escapes in DEFAULT_CHARSET."""
    raw = request.META.get("QUERY_STRING", "")
    if isinstance(request, ASGIRequest):
        return raw.encode(), settings.DEFAULT_CHARSET
    try:
        return raw.encode("iso-8859-1"), request.encoding or settings.DEFAULT_CHARSET
    except UnicodeEncodeError:  # not from a WSGI server: the text it is
        return raw.encode(), "utf-8"


class StrictMultiPartParser(MultiPartParser):
    """Django's multipart parser, except that a field whose name or value is not text in the request's
    charset is named in `not_text` (after `parse()`) instead of read with U+FFFD in place of its bytes.

    Django decodes with errors="replace" inside its parse loop, so it is asked to decode as ISO-8859-1
    (one character per byte, nothing replaced) and each name and value is decoded again here from those
    bytes, strictly. File names are decoded as Django does (U+FFFD); file contents not at all."""

    TRANSPARENT = "iso-8859-1"

    def __init__(self, META, input_data, upload_handlers, encoding=None):
        self.charset = encoding or settings.DEFAULT_CHARSET
        self.not_text: str | None = None
        try:
            check_charset(self.charset)
        except LookupError:
            raise MultiPartParserError(unreadable_charset_message(self.charset)) from None
        super().__init__(META, input_data, upload_handlers, self.TRANSPARENT)

    def sanitize_file_name(self, file_name):
        return super().sanitize_file_name(self._text(file_name, "replace"))

    def parse(self):
        post, files = super().parse()
        text = QueryDict(mutable=True, encoding=self.charset)
        for key, values in post.lists():
            try:
                text.setlist(self._text(key), [self._text(value) for value in values])
            except (UnicodeError, ValueError):
                self.not_text = self.not_text or _field_name(self._text(key, "replace"))
                text.setlist(self._text(key, "replace"), [self._text(value, "replace") for value in values])
        text._mutable = False
        renamed = type(files)()
        for key, uploads in files.lists():
            try:
                renamed.setlist(self._text(key), uploads)
            except (UnicodeError, ValueError):
                self.not_text = self.not_text or _field_name(self._text(key, "replace"))
                renamed.setlist(self._text(key, "replace"), uploads)
        return text, renamed

    def _text(self, read: str, errors: str = "strict") -> str:
        return read.encode(self.TRANSPARENT).decode(self.charset, errors)


class _StrictFormUpload(FileUploadHandler):
    """Parses a page's multipart body with StrictMultiPartParser whoever reads `request.POST` first (the
    CSRF check does, before RejectNulMiddleware.process_view): Django lets the first upload handler take
    over the parse (`handle_raw_input`). The other handlers still receive the files. A field that is not
    text is left on the request for `process_view` to refuse, before any view runs; until then it reads
    with U+FFFD, and the rest of the form (the CSRF token) as sent."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        handlers = [handler for handler in self.request.upload_handlers if handler is not self]
        parser = StrictMultiPartParser(META, input_data, handlers, encoding)
        post, files = parser.parse()
        self.request.form_field_not_text = parser.not_text
        return post, files

    def receive_data_chunk(self, raw_data, start):
        return raw_data

    def file_complete(self, file_size):
        return None


class RejectNulMiddleware:
    """400 for a NUL character in the path, a query parameter or a page's form field, and for a query
    parameter or a page's form field that is not text in the request's charset (see "form text" above),
    naming where it is.

    PostgreSQL text cannot hold NUL, so such a value reaching a query is a 500 there (and silently
    works on SQLite). One check here covers every page, every page's form (a view reading
    `request.POST` directly, not through a Django form, would store it) and every API filter; API
    bodies are checked by the API's parsers (`portal.core.api`), which name the JSON field."""

    API_PREFIX = "/api/"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if "\x00" in request.path:
            return self._reject(request, "path", NUL_MESSAGE)
        if request.META.get("QUERY_STRING") and (refused := self._query_not_text(request)) is not None:
            return refused
        if (where := nul_field(request.GET)) is not None:
            return self._reject(request, where[:100], NUL_MESSAGE)
        if request.method == "POST" and not request.path.startswith(self.API_PREFIX):
            # Nothing is read yet: the handler only changes how the body is parsed when it is.
            request.upload_handlers.insert(0, _StrictFormUpload(request))
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        """The form body is looked at here, once a view is found: after RequestBodyLimitMiddleware's
        `process_view` refused a body over the view's cap without reading it (and put a chunked body
        back as a sized one). Read in `__call__`, before the cap, a body of any size was parsed — files
        spooled to disk — even for a page that does not exist."""
        if request.method != "POST" or request.path.startswith(self.API_PREFIX):
            return None
        encoding = request.encoding or settings.DEFAULT_CHARSET  # Django's own fallback for an unknown one
        try:
            if (where := self._not_text_in_form(request)) is not None:
                return self._reject(request, where, not_text_message(encoding))
            where = nul_field(request.POST)
        except LookupError:
            return error_response(request, 400, "Bad request", unreadable_charset_message(encoding))
        except (UnreadablePostError, RawPostDataException):
            return None  # a body the client stopped sending is left to the view
        return None if where is None else self._reject(request, where[:100], NUL_MESSAGE)

    def _query_not_text(self, request: HttpRequest) -> HttpResponse | None:
        """The 400 for a query parameter that is not text (before `request.GET` is read as U+FFFD)."""
        query, encoding = _query_bytes(request)
        try:
            where = query_string_not_text(query, encoding)
        except LookupError:
            return error_response(request, 400, "Bad request",
                                  f'The query string cannot be read as "{encoding}" text: send UTF-8.')
        return None if where is None else self._reject(request, where, not_text_message(encoding))

    @staticmethod
    def _not_text_in_form(request: HttpRequest) -> str | None:
        """The first form field that is not text. Django parses only form bodies (urlencoded, multipart)
        into `request.POST`, as the CSRF check may just have done (a malformed multipart body is
        Django's 400); an urlencoded body is kept whole (`request.body`) and is read again here, a
        multipart one was parsed by `_StrictFormUpload`. Uploaded files are not text and are not looked
        at (Django drops non-printable characters from their names)."""
        if request.content_type == "application/x-www-form-urlencoded":
            return form_field_not_text(request.body, request.encoding or settings.DEFAULT_CHARSET)
        request.POST  # noqa: B018 - parsed through _StrictFormUpload, which notes a field that is not text
        return getattr(request, "form_field_not_text", None)

    def _reject(self, request: HttpRequest, where: str, message: str) -> HttpResponse:
        return error_response(request, 400, "Bad request", f"{where}: {message}", details={where: [message]})
