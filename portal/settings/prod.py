"""Production profile: PostgreSQL + Redis, DEBUG off, SECRET_KEY required, HTTPS hardening."""

from .base import *  # noqa: F403
from .base import shared_storage
from .env import ENV, ImproperEnvironment

if not ENV.secret_key or len(ENV.secret_key) < 50:
    raise ImproperEnvironment("SECRET_KEY must be set (at least 50 characters) in production")
SECRET_KEY = ENV.secret_key
if ENV.debug:
    raise ImproperEnvironment("DEBUG must be off in production")
DEBUG = False

SECURE_SSL_REDIRECT = ENV.secure_ssl_redirect
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# The __Host- prefix makes the browser refuse these cookies unless they are Secure, for path / and
# without a Domain: a sibling subdomain cannot plant a session or a CSRF token for the portal.
SESSION_COOKIE_NAME = "__Host-plinth-session"
CSRF_COOKIE_NAME = "__Host-plinth-csrf"
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
# Liveness/readiness probes arrive over plain HTTP from the load balancer.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
STORAGES = {
    "default": shared_storage(ENV),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = False

# `make run PROFILE=prod` (manage.py devstack --profile prod): the production profile on plain http at
# 127.0.0.1, so a browser can sign in without TLS. Secure cookies are dropped with their __Host- prefix
# (which requires Secure) and there is no redirect to https; the three deploy checks that flag exactly
# that are silenced here, and nothing else. Refused unless every allowed host is a loopback name.
if ENV.local_http:
    if not set(ALLOWED_HOSTS) <= {"127.0.0.1", "localhost", "[::1]"}:  # noqa: F405
        raise ImproperEnvironment("PLINTH_LOCAL_HTTP is for loopback only: ALLOWED_HOSTS must be 127.0.0.1, "
                                  "localhost or [::1]")
    SECURE_SSL_REDIRECT = False
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = False
    SESSION_COOKIE_NAME, CSRF_COOKIE_NAME = "plinth-session", "plinth-csrf"
    SILENCED_SYSTEM_CHECKS = ["security.W008", "security.W012", "security.W016"]
