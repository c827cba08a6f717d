"""Settings for the test suite.

The database is a file (not in-memory) so that real Celery worker processes started by the
tests read and write the same data. Services (Redis, MLflow, PostgreSQL) come from the
environment that `tests/services.py` prepares.
"""

import os

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR, shared_storage
from .env import BASE_DIR, ENV

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # One file per test run, so that concurrent runs (and their worker processes) never share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-db-{os.getpid()}.sqlite3")}
# Uploaded descriptors per test run too (the database they are registered in is).
PLINTH_CATALOG_UPLOAD_ROOT = VAR_DIR / f"catalog-uploads-{os.getpid()}"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Rate-limit counters in the suite's real Redis when there is one, as in production; the
    # prefix keeps concurrent runs (and the gunicorn processes a test starts) apart.
    "throttle": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": ENV.redis_url,
         "KEY_PREFIX": f"plinth-test-throttle-{os.getpid()}"}
        if ENV.redis_url else
        {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "throttle"}
    ),
}
# Generous abuse limits, so that no test is throttled by accident (the e2e journeys sign in many
# times from 127.0.0.1); the tests of the limits set their own. Variables still win, so a
# subprocess (gunicorn in tests/core/test_abuse_limits.py) can be given small ones.
PLINTH_LOGIN_MAX_FAILURES_PER_ADDRESS = ENV.login_max_failures_per_address or 10_000
PLINTH_API_RATES = {
    "read": ENV.api_rate_read or "100000/min",
    "write": ENV.api_rate_write or "100000/min",
    "expensive": ENV.api_rate_expensive or "100000/min",
    "anon": ENV.api_rate_anon or "100000/min",
    "csp-report": "100000/min",
}
if not ENV.email_host:  # a worker started by the fault-injection tests talks to their SMTP server
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": shared_storage(ENV),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PLINTH_CATALOG_ALLOW_PRIVATE_URLS = False
# The test process publishes Celery tasks into its own memory (kombu's in-memory transport), not to the
# suite's Redis nor to var/'s embedded broker: a test that runs no worker leaves no message behind for
# the next test's worker to run against other data, nor for the worker of a developer's `make run`. A
# test that runs a worker points this process at that worker's Redis (tests/conftest.py, `_broker_url`);
# what is still queued when the test ends is dropped, and the process publishes into memory again.
# Processes a test starts (workers, web nodes) are given their broker in CELERY_BROKER_URL. The transport
# options stay base's (the memory transport reads none of them; they are Redis's when REDIS_URL is set).
CELERY_BROKER_URL = ENV.broker_url or "memory://"
# Workers started by the tests sync MLflow at start-up only when a test asks for it: the suite's MLflow
# server is shared, and a sync would add its models to every test's catalog.
PLINTH_MLFLOW_SYNC_ON_START = ENV.mlflow_sync_on_start if os.environ.get("PLINTH_MLFLOW_SYNC_ON_START") else False
# Analytics: the suite's events stay in the test process (tests flush explicitly: no background thread
# writing into a test's transaction). A test of the Redis buffer sets PLINTH_TEST_ANALYTICS_REDIS and a
# key of its own, for itself and the worker it starts.
PLINTH_ANALYTICS_FLUSH_THREAD = False
PLINTH_ANALYTICS_REDIS_URL = ENV.redis_url if os.environ.get("PLINTH_TEST_ANALYTICS_REDIS") else None
PLINTH_ANALYTICS_REDIS_KEY = os.environ.get("PLINTH_TEST_ANALYTICS_KEY") or f"plinth-test-insights-{os.getpid()}"

# The OpenLineage spec is read where the suite keeps shared reference files (../shared beside the
# repository), unless the environment names another folder.
PLINTH_OPENLINEAGE_SPEC_DIR = ENV.openlineage_spec_dir or str(
    BASE_DIR.parent / "shared" / "compat" / "openlineage" / "spec")
