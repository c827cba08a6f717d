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
