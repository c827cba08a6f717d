"""The portal's browser-hardening headers: one Content-Security-Policy, the Permissions-Policy, and the
reading of the violation reports that browsers send back.

Every response gets `policy()` (set by `SecurityHeadersMiddleware`); a view may only tighten it, and does
so through `policy(**tighter_directives)` so that the report endpoint and the rest stay the same.
docs/security.md ("Browser hardening") explains each directive.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

REPORT_PATH = "/csp-report/"
REPORT_GROUP = "csp"

DIRECTIVES: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    # Swagger UI and Redoc (styled-components) insert <style> elements and style attributes at run
    # time; styles cannot run script, and every script stays 'self'-only.
    "style-src": "'self' 'unsafe-inline'",
    # data: for Swagger UI's icons (inline SVG in its stylesheet). Docs pages tighten this to 'self'.
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    # Redoc builds its search index in a Worker created from a Blob of its own bundled code. Only a
    # script that already runs (script-src 'self') can create one, so blob: adds no way in for
    # injected markup; without it Redoc's search falls back to the page and the browser reports.
    "worker-src": "'self' blob:",
    "frame-src": "'none'",
    "frame-ancestors": "'none'",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "report-uri": REPORT_PATH,
    "report-to": REPORT_GROUP,
}

# Powerful features no page of the portal uses: denied to the page and to anything it could embed.
PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "encrypted-media", "geolocation", "gyroscope",
    "hid", "idle-detection", "magnetometer", "microphone", "midi", "payment", "publickey-credentials-get",
    "screen-wake-lock", "serial", "usb", "xr-spatial-tracking",
))


def policy(request=None, **tighter: str) -> str:
    """The header value; keyword arguments replace directives (underscores for dashes).

    `report-to` only over HTTPS: Chromium reads `Reporting-Endpoints` from secure responses only, and
    once a policy names a `report-to` group it ignores `report-uri` — over plain HTTP (development,
    tests) no report would arrive at all. Firefox and Safari use `report-uri` either way."""
    directives = DIRECTIVES | {name.replace("_", "-"): value for name, value in tighter.items()}
    origin = _sso_origin()
    if origin and directives.get("form-action") == "'self'":
        # The sign-out form redirects to the identity provider's end-session endpoint, and browsers
        # hold form redirects to form-action too (docs/identity.md).
        directives["form-action"] = f"'self' {origin}"
    if request is not None and not request.is_secure():
        directives.pop("report-to")
    return "; ".join(f"{name} {value}" for name, value in directives.items())


def _sso_origin() -> str | None:
    from django.conf import settings

    if not (settings.PLINTH_OIDC_ISSUER and settings.PLINTH_OIDC_CLIENT_ID):
        return None
    parts = urlsplit(settings.PLINTH_OIDC_ISSUER)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme in ("https", "http") and parts.netloc else None


def reporting_endpoints() -> str:
    """`Reporting-Endpoints` names the group `report-to` refers to (the Reporting API, Chromium)."""
    return f'{REPORT_GROUP}="{REPORT_PATH}"'


# --- violation reports -------------------------------------------------------------------------

# Metric labels stay a closed set: a report names its directive, and anything else is "other".
KNOWN_DIRECTIVES = frozenset({
    *DIRECTIVES, "script-src-elem", "script-src-attr", "style-src-elem", "style-src-attr", "child-src",
    "manifest-src", "media-src", "prefetch-src", "require-trusted-types-for", "trusted-types",
})
MAX_REPORTS_PER_BODY = 20
_KEYWORD_URIS = {"inline", "eval", "wasm-eval", "blob", "data", "self", "trusted-types-sink", "trusted-types-policy"}


class ReportError(ValueError):
    """The body is not a CSP report (the endpoint answers 400)."""


@dataclass(frozen=True)
class Violation:
    directive: str
    blocked: str
    document: str
    source: str
    line: int | None
    disposition: str
    sample: str

    @property
    def metric_directive(self) -> str:
        return self.directive if self.directive in KNOWN_DIRECTIVES else "other"


def parse_reports(body: bytes, content_type: str) -> list[Violation]:
    """Violations in a `report-uri` body (application/csp-report: {"csp-report": {...}}) or a Reporting
    API body (application/reports+json: [{"type": "csp-violation", "body": {...}}, ...])."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReportError(f"the body is not JSON: {str(exc)[:120]}") from exc
    if content_type == "application/reports+json" or isinstance(data, list):
        if not isinstance(data, list):
            raise ReportError("a Reporting API body must be a JSON array of reports")
        bodies = [r.get("body") for r in data[:MAX_REPORTS_PER_BODY]
                  if isinstance(r, dict) and r.get("type") == "csp-violation"]
        return [_from_reporting_api(b) for b in bodies if isinstance(b, dict)]
    if not isinstance(data, dict) or not isinstance(data.get("csp-report"), dict):
        raise ReportError('a report-uri body must be a JSON object with a "csp-report" object')
    return [_from_report_uri(data["csp-report"])]


def _from_report_uri(r: dict) -> Violation:
    return Violation(
        directive=_directive(r.get("effective-directive") or r.get("violated-directive")),
        blocked=_scrub(r.get("blocked-uri")), document=_scrub(r.get("document-uri")),
        source=_scrub(r.get("source-file")), line=_line(r.get("line-number")),
        disposition=_short(r.get("disposition"), 10), sample=_short(r.get("script-sample"), 40),
    )


def _from_reporting_api(r: dict) -> Violation:
    return Violation(
        directive=_directive(r.get("effectiveDirective")),
        blocked=_scrub(r.get("blockedURL")), document=_scrub(r.get("documentURL")),
        source=_scrub(r.get("sourceFile")), line=_line(r.get("lineNumber")),
        disposition=_short(r.get("disposition"), 10), sample=_short(r.get("sample"), 40),
    )


def _short(value, limit: int) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _directive(value) -> str:
    # "violated-directive" may carry the policy's sources too ("img-src 'self'"): the name is enough.
    name = _short(value, 60).strip().split(" ")[0].lower()
    return name if re.fullmatch(r"[a-z-]{1,40}", name) else "unknown"


def _line(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9 else None


def _scrub(value) -> str:
    """A URL for the log without its query and fragment (they may carry tokens), at most 200 characters."""
    if not isinstance(value, str) or not value:
        return ""
    if value.lower() in _KEYWORD_URIS:
        return value.lower()
    try:
        parts = urlsplit(value[:2000])
    except ValueError:
        return "(unparsable)"
    if parts.scheme.lower() in {"data", "blob", "javascript", "vbscript"}:
        return parts.scheme.lower()  # the rest is content, not an address
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))[:200]
