"""OpenID Connect sign-in: the relying party, on Authlib's Django client (docs/identity.md).

Authlib does the protocol: the discovery document, the authorization request with `state`, `nonce` and
a PKCE `code_challenge` (S256) kept in the session, the code exchange, and the ID token's signature
(keys from the provider's JWKS, fetched again when a token names a key id it does not hold: rotation),
issuer, audience, expiry with a clock-skew leeway, and nonce. This module adds what a portal needs
around it: a discovery document is trusted for an hour and must name the configured issuer; only
asymmetric signature algorithms are accepted (never `none`, never a MAC keyed with the client secret);
every failure becomes an `OIDCError` with a message for the person and a status (never a 500); and no
token, code or secret is ever logged or put in a message.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.django_client import OAuth
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from joserfc.errors import BadSignatureError, ClaimError, ExceededSizeError, ExpiredTokenError, JoseError

# Signature algorithms an ID token may use: asymmetric only. `none` proves nothing; HS* would make the
# client secret (held by every portal node) a signing key.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
SESSION_ID_TOKEN = "plinth_oidc_id_token"  # noqa: S105 (a session key name) kept for the sign-out hint
SESSION_NEXT = "plinth_oidc_next"
# A sign-in attempt (state, nonce, PKCE verifier) is kept in the session under Authlib's key prefix until
# its answer comes back, or for STATE_LIFETIME_SECONDS (PLINTH_OIDC_STATE_LIFETIME_SECONDS overrides it);
# one session holds at most MAX_PENDING_ATTEMPTS (a reloading tab or a loop drops its oldest ones).
STATE_PREFIX = "_state_plinth_"
STATE_LIFETIME_SECONDS = 3600
MAX_PENDING_ATTEMPTS = 5


class OIDCError(Exception):
    """A refused sign-in. `message` is for the person (names what failed, never a token); `reason` is a
    short code for the audit trail and the logs."""

    def __init__(self, message: str, *, reason: str, status: int = 401) -> None:
        super().__init__(message)
        self.message, self.reason, self.status = message, reason, status


@dataclass(frozen=True)
class Config:
    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str
    timeout: int
    leeway: int
    metadata_ttl: int

    @classmethod
    def current(cls) -> Config | None:
        if not (settings.PLINTH_OIDC_ISSUER and settings.PLINTH_OIDC_CLIENT_ID):
            return None
        return cls(
            issuer=settings.PLINTH_OIDC_ISSUER.rstrip("/"), client_id=settings.PLINTH_OIDC_CLIENT_ID,
            client_secret=settings.PLINTH_OIDC_CLIENT_SECRET, scopes=settings.PLINTH_OIDC_SCOPES,
            timeout=settings.PLINTH_OIDC_TIMEOUT_SECONDS, leeway=settings.PLINTH_OIDC_CLOCK_SKEW_SECONDS,
            metadata_ttl=settings.PLINTH_OIDC_METADATA_TTL_SECONDS,
        )


def enabled() -> bool:
    return Config.current() is not None


# One Authlib client per configuration and process. Authlib keeps the discovery document and the JWKS
# on the client; a new client after `metadata_ttl` reads the discovery document again.
_clients: dict[Config, tuple[float, Any]] = {}
_lock = threading.Lock()


def _client(config: Config):
    now = time.monotonic()
    with _lock:
        cached = _clients.get(config)
        if cached is not None and now - cached[0] < config.metadata_ttl:
            return cached[1]
        registry = OAuth()
        client = registry.register(
            name="plinth",
            client_id=config.client_id,
            client_secret=config.client_secret,
            server_metadata_url=f"{config.issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": config.scopes, "code_challenge_method": "S256", "default_timeout": config.timeout,
                # Without a secret the client is public: PKCE alone binds the code to this session.
                "token_endpoint_auth_method": "client_secret_basic" if config.client_secret else "none",
            },
        )
        _clients.clear()  # a changed configuration (tests, a reload) leaves no stale client behind
        _clients[config] = (now, client)
        return client


def forget_cached_clients() -> None:
    """Drop the cached discovery documents and key sets (tests; an operator's reload)."""
    with _lock:
        _clients.clear()


def _metadata(config: Config) -> dict:
    client = _client(config)
    try:
        metadata = client.load_server_metadata()
    except requests.RequestException as exc:
        _clients.pop(config, None)
        raise OIDCError(f"The identity provider at {config.issuer} could not be reached "
                        f"({type(exc).__name__}). Try again in a minute.", reason="provider-unreachable",
                        status=503) from exc
    except ValueError as exc:  # not JSON
        _clients.pop(config, None)
        raise OIDCError(f"The identity provider at {config.issuer} sent a discovery document that is not "
                        "JSON.", reason="discovery-invalid", status=502) from exc
    if metadata.get("issuer", "").rstrip("/") != config.issuer:
        _clients.pop(config, None)
        raise OIDCError(f"The identity provider's discovery document names the issuer "
                        f"{str(metadata.get('issuer'))[:200]!r}, not {config.issuer!r}: refused (a discovery "
                        "document must describe the issuer it was fetched from).", reason="discovery-issuer",
                        status=502)
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        if not isinstance(metadata.get(key), str):
            _clients.pop(config, None)
            raise OIDCError(f"The identity provider's discovery document has no {key}.",
                            reason="discovery-invalid", status=502)
    return metadata


def begin(request: HttpRequest, redirect_uri: str) -> HttpResponse:
    """The redirect to the provider's authorization endpoint (code flow, PKCE S256, state, nonce)."""
    config = _required()
    _metadata(config)
    client = _client(config)
    lifetime = _state_lifetime()
    client.framework.expires_in = lifetime
    prune_attempts(request.session, keep=MAX_PENDING_ATTEMPTS - 1)
    if not getattr(getattr(request, "user", None), "is_authenticated", False):
        # An anonymous session exists for this attempt only: it expires with it, and the beat's
        # accounts-clear-expired-sessions deletes it when the person never comes back.
        request.session.set_expiry(lifetime)
    try:
        return client.authorize_redirect(request, redirect_uri)
    except requests.RequestException as exc:
        raise OIDCError(f"The identity provider at {config.issuer} could not be reached "
                        f"({type(exc).__name__}).", reason="provider-unreachable", status=503) from exc


@dataclass(frozen=True)
class SignIn:
    issuer: str
    claims: dict[str, Any]
    id_token: str


def finish(request: HttpRequest) -> SignIn:
    """Check the provider's answer at the redirect URI and return the ID token's verified claims."""
    config = _required()
    error = request.GET.get("error")
    if error:
        detail = request.GET.get("error_description") or ""
        raise OIDCError(f"The identity provider refused the sign-in: {error[:100]}"
                        f"{': ' + detail[:300] if detail else ''}.", reason=f"provider-error:{error[:60]}",
                        status=403)
    code, state = request.GET.get("code"), request.GET.get("state")
    if not code or not state:
        raise OIDCError("The sign-in answer has no code or no state: start again from the sign-in page.",
                        reason="no-code", status=400)
    metadata = _metadata(config)
    answered_by = request.GET.get("iss")  # RFC 9207: which provider answered (mix-up defence)
    if answered_by is not None and answered_by.rstrip("/") != metadata["issuer"].rstrip("/"):
        raise OIDCError("The sign-in answer comes from another identity provider than the one asked.",
                        reason="response-issuer", status=400)
    client = _client(config)
    entry = request.session.get(f"{STATE_PREFIX}{state}")
    state_data = client.framework.get_state_data(request.session, state)
    client.framework.clear_state_data(request.session, state)  # a state is good for one answer only
    if isinstance(entry, dict) and not _pending(entry, time.time()):  # Authlib reads it without its expiry
        raise OIDCError("The sign-in took too long: it was started more than "
                        f"{_state_lifetime() // 60} minutes ago. Start again from the sign-in page.",
                        reason="state-expired", status=400)
    if not state_data or "nonce" not in state_data:
        raise OIDCError("The sign-in answer does not belong to a sign-in started in this browser (unknown or "
                        "already used state). Start again from the sign-in page.", reason="bad-state",
                        status=400)
    try:
        token = client.fetch_access_token(
            code=code, redirect_uri=state_data.get("redirect_uri"),
            code_verifier=state_data.get("code_verifier"))
    except requests.RequestException as exc:
        raise OIDCError(f"The identity provider's token endpoint could not be reached ({type(exc).__name__}).",
                        reason="provider-unreachable", status=503) from exc
    except AuthlibBaseError as exc:
        raise OIDCError(f"The identity provider did not accept the sign-in code ({_error_name(exc)}). "
                        "Start again from the sign-in page.", reason="code-refused", status=401) from exc
    id_token = token.get("id_token")
    if not isinstance(id_token, str):
        raise OIDCError("The identity provider sent no ID token.", reason="no-id-token", status=401)
    _check_algorithm(id_token)
    # The audience must list this client (Authlib on its own accepts any `aud` when `azp` names us).
    options = {"iss": {"essential": True, "values": [metadata["issuer"]]}, "sub": {"essential": True},
               "aud": {"essential": True, "values": [config.client_id]}, "exp": {"essential": True},
               "iat": {"essential": True}}
    try:
        claims = client.parse_id_token(token, nonce=state_data["nonce"], claims_options=options,
                                       leeway=config.leeway)
    except requests.RequestException as exc:
        raise OIDCError(f"The identity provider's keys could not be fetched ({type(exc).__name__}).",
                        reason="provider-unreachable", status=503) from exc
    except (JoseError, AuthlibBaseError, ValueError, KeyError, TypeError) as exc:
        raise _refused_token(exc) from exc
    if claims is None:
        raise OIDCError("The identity provider sent no ID token.", reason="no-id-token", status=401)
    request.session.set_expiry(None)  # signed in: the session lives as long as any other, not the attempt
    return SignIn(issuer=metadata["issuer"].rstrip("/"), claims=dict(claims), id_token=id_token)


def _state_lifetime() -> int:
    return int(getattr(settings, "PLINTH_OIDC_STATE_LIFETIME_SECONDS", STATE_LIFETIME_SECONDS))


def _expiry(entry: Any) -> float:
    exp = entry.get("exp") if isinstance(entry, dict) else None
    return float(exp) if isinstance(exp, int | float) else 0.0


def _pending(entry: Any, now: float) -> bool:
    return _expiry(entry) >= now


def prune_attempts(session: Any, *, keep: int) -> int:
    """Forget the session's expired sign-in attempts and, past `keep`, its oldest pending ones (written
    before a new attempt, so that no session holds more than MAX_PENDING_ATTEMPTS). Returns how many."""
    now = time.time()
    attempts = sorted((_expiry(entry), key) for key, entry in session.items() if key.startswith(STATE_PREFIX))
    pending = [key for _, key in attempts if _pending(session[key], now)]
    drop = [key for _, key in attempts if key not in pending] + pending[:max(0, len(pending) - keep)]
    for key in drop:
        del session[key]
    return len(drop)


def end_session_url(id_token: str | None, post_logout_redirect_uri: str) -> str | None:
    """Where to send the browser so that the provider ends its session too (RP-initiated logout), or
    None when the provider does not offer it (no `end_session_endpoint`) or cannot be asked now."""
    config = Config.current()
    if config is None:
        return None
    try:
        endpoint = _metadata(config).get("end_session_endpoint")
    except OIDCError:
        return None  # the portal's own session is over; the provider's may outlive it
    if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
        return None
    params = {"client_id": config.client_id, "post_logout_redirect_uri": post_logout_redirect_uri}
    if id_token:
        params["id_token_hint"] = id_token
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


def _required() -> Config:
    config = Config.current()
    if config is None:
        raise OIDCError("Single sign-on is not configured.", reason="not-configured", status=404)
    return config


def _check_algorithm(id_token: str) -> None:
    """Refuse `none`, MACs and anything unexpected before a key is even looked up."""
    try:
        header_b64 = id_token.split(".")[0]
        header = json.loads(base64.urlsafe_b64decode(header_b64 + "=" * (-len(header_b64) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise OIDCError("The ID token is malformed.", reason="token-malformed", status=401) from exc
    alg = header.get("alg") if isinstance(header, dict) else None
    if alg not in ALLOWED_ALGORITHMS:
        raise OIDCError(f"The ID token is signed with {str(alg)[:20]!r}, which the portal does not accept "
                        f"(accepted: {', '.join(ALLOWED_ALGORITHMS)}).", reason="token-algorithm", status=401)


_CLAIM_MESSAGES = {
    "exp": ("The ID token has expired (checked with {leeway} seconds of clock skew allowed). Sign in again; "
            "if this keeps happening, the portal's or the provider's clock is wrong.", "token-expired"),
    "aud": ("The ID token was issued for another application (wrong audience).", "token-audience"),
    "azp": ("The ID token was issued for another application (wrong authorized party).", "token-audience"),
    "iss": ("The ID token was issued by another provider (wrong issuer).", "token-issuer"),
    "nonce": ("The ID token does not belong to this sign-in (nonce mismatch). Start again from the sign-in "
              "page.", "token-nonce"),
    "iat": ("The ID token's issue time is not acceptable.", "token-iat"),
    "nbf": ("The ID token is not valid yet (checked with {leeway} seconds of clock skew allowed).",
            "token-not-yet-valid"),
    "sub": ("The ID token names no subject.", "token-subject"),
    "at_hash": ("The ID token does not match its access token.", "token-at-hash"),
}


def _refused_token(exc: Exception) -> OIDCError:
    leeway = settings.PLINTH_OIDC_CLOCK_SKEW_SECONDS
    if isinstance(exc, ExpiredTokenError):
        claim = "exp"
    elif isinstance(exc, ClaimError):
        claim = exc.claim
    else:
        claim = None
    if claim in _CLAIM_MESSAGES:
        message, reason = _CLAIM_MESSAGES[claim]
        return OIDCError(message.format(leeway=leeway), reason=reason, status=401)
    if isinstance(exc, ClaimError):
        return OIDCError(f"The ID token's claim {str(claim)[:60]!r} is missing or not acceptable.",
                         reason="token-claim", status=401)
    if isinstance(exc, ExceededSizeError):
        # joserfc's cap (128,000 bytes of payload): far above a real token, reached by a groups claim of
        # thousands of long names. Providers filter the claim (Okta's filter, Entra's assigned groups).
        return OIDCError("The ID token is too large to be read (its payload is over 128,000 bytes): its groups "
                         "claim probably lists thousands of groups. Ask the identity team to send only the "
                         "groups the portal maps (a claim filter).", reason="token-too-large", status=401)
    if isinstance(exc, BadSignatureError):
        return OIDCError("The ID token's signature does not verify against the provider's keys: refused.",
                         reason="token-signature", status=401)
    if isinstance(exc, JoseError) and exc.error in {"invalid_key_id", "missing_key"}:
        return OIDCError("The ID token is signed with a key the provider does not publish: refused.",
                         reason="token-key", status=401)
    return OIDCError("The ID token is malformed or its signature does not verify: refused.",
                     reason="token-invalid", status=401)


def _error_name(exc: Exception) -> str:
    return str(getattr(exc, "error", "") or type(exc).__name__)[:60]


