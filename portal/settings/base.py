"""Settings shared by every profile. Values that vary come from `portal.settings.env`."""

from __future__ import annotations

from urllib.parse import urlparse

import dj_database_url

from .env import BASE_DIR, ENV

VAR_DIR = ENV.var_dir
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = ENV.secret_key or "dev-only-insecure-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz"
DEBUG = bool(ENV.debug)
ALLOWED_HOSTS = ENV.allowed_hosts
CSRF_TRUSTED_ORIGINS = ENV.csrf_trusted_origins

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_htmx",
    "template_partials",
    "portal.core",
    "portal.accounts",
    "catalog",
    "portal.search",
    "portal.governance",
    "portal.scaffolder",
    "portal.techdocs",
    "portal.insights",
    "portal.feedback",
    "portal.lineage",
    "portal.deployments",
    "portal.scorecards",
    "portal.slo",
    "portal.costs",
    "portal.incidents",
    "portal.backup",
    "portal.site",  # above every app: the home page, the demo organisation, the dev stack
]

MIDDLEWARE = [
    "portal.core.middleware.RequestIdMiddleware",
    "portal.core.middleware.SecurityHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the CSRF check, which reads form bodies.
    "portal.core.limits.RequestBodyLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "portal.core.middleware.RejectNulMiddleware",  # after auth: its error page shows who is signed in
    "portal.core.middleware.PortalLoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last: sees the view's outcome and the user every earlier layer resolved (no query of its own).
    "portal.insights.middleware.AnalyticsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # One date format everywhere: the `when` filter (portal/core/templatetags/plinth.py).
            "builtins": ["portal.core.templatetags.plinth"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.core.context_processors.navigation",
                "portal.governance.context_processors.navigation",
                "portal.insights.context_processors.navigation",
                "portal.deployments.context_processors.navigation",
            ],
        },
    },
]


# Web processes only (`portal.wsgi` calls `portal.core.db.serve_web_requests`), PostgreSQL only: how long
# a request waits for a lock (a first large import holds the catalog's tables until it commits) before
# it answers 503 with a Retry-After instead of holding its worker. 0: no limit.
PLINTH_WEB_LOCK_TIMEOUT_SECONDS = ENV.web_lock_timeout


def _database() -> dict:
    if ENV.database_url:
        cfg = dj_database_url.parse(ENV.database_url, conn_max_age=60, conn_health_checks=True)
        if cfg["ENGINE"] == "django.db.backends.sqlite3":
            cfg["OPTIONS"] = _sqlite_options()
        return cfg
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "plinth.sqlite3",
        "OPTIONS": _sqlite_options(),
    }


def _sqlite_options() -> dict:
    # WAL lets readers proceed while the worker writes; IMMEDIATE avoids the
    # "database is locked" upgrade deadlock between two writers.
    return {
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
            "PRAGMA busy_timeout=20000; PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=8192;"
        ),
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# "throttle" holds the API rate-limit counters; it must be shared by every web process (Redis:
# atomic INCR across nodes; the embedded default: files under var/, shared by one host's workers).
if ENV.redis_url:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": ENV.redis_url,
            "KEY_PREFIX": "plinth",
        },
        "throttle": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": ENV.redis_url,
            "KEY_PREFIX": "plinth-throttle",
        },
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        },
        "throttle": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache" / "throttle"),
            "OPTIONS": {"MAX_ENTRIES": 10000},
        },
    }

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "site:home"
LOGOUT_REDIRECT_URL = "accounts:login"
# Browser hardening (docs/security.md). Lax, not Strict: a link to a review from mail or chat must
# arrive signed in; Lax still keeps the cookies off cross-site POSTs.
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# No script reads the CSRF cookie: htmx sends the token from `hx-headers` in templates/base.html and
# Swagger UI's initialiser gets it rendered in, so the cookie can be hidden from script.
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# The CSP violation report endpoint (portal.core.views.csp_report): its body cap. Its rate is the
# "csp-report" scope of PLINTH_API_RATES.
PLINTH_CSP_REPORT_MAX_BYTES = 32 * 1024

# Abuse limits: every number here is listed, with its variable, in docs/security.md.
# Reverse proxies in front of Plinth whose X-Forwarded-For entries are trusted (0: the header is ignored).
PLINTH_TRUSTED_PROXY_COUNT = ENV.trusted_proxy_count
# Sign-in throttle: this many failures inside the sliding window lock an account name, or an
# address (an IPv6 /64), until enough of them have left the window.
PLINTH_LOGIN_MAX_FAILURES = ENV.login_max_failures or 5
PLINTH_LOGIN_MAX_FAILURES_PER_ADDRESS = ENV.login_max_failures_per_address or 30
PLINTH_LOGIN_WINDOW_SECONDS = ENV.login_window_seconds or 15 * 60
# API rate limits per token (per user for session calls, per address for anonymous ones):
# reads, writes, and the expensive writes (location register/refresh, validation, template runs,
# approval requests, docs builds), which count against both "write" and "expensive".
PLINTH_API_RATES = {
    "read": ENV.api_rate_read or "600/min",
    "write": ENV.api_rate_write or "120/min",
    "expensive": ENV.api_rate_expensive or "20/min",
    "anon": ENV.api_rate_anon or "60/min",
    # Browsers' CSP violation reports, per client address (POST /csp-report/, no sign-in needed).
    "csp-report": "60/min",
}
# Request bodies: the global cap; endpoints set their own, smaller or larger (portal/core/limits.py).
PLINTH_MAX_REQUEST_BYTES = ENV.max_request_bytes or 1024 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "portal.core.vendor.PatchedVendorFinder",  # Redoc without its CDN logo: plinth-vendor/...
]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)


def shared_storage(env) -> dict:
    """The storage every node shares for files one node writes and another reads (built download
    archives; docs/deployment.md#no-state-on-a-nodes-disk): S3 (django-storages) when a bucket is
    configured, else a folder — on one machine under VAR_DIR, or a shared mount given as
    PLINTH_STORAGE_ROOT. Credentials for S3 come from boto3's own chain (AWS_* variables, instance role)."""
    if env.s3_bucket:
        options = {"bucket_name": env.s3_bucket, "location": env.s3_prefix, "default_acl": None,
                   "file_overwrite": True, "querystring_auth": True}
        if env.s3_endpoint_url:
            options["endpoint_url"] = env.s3_endpoint_url
        if env.s3_region:
            options["region_name"] = env.s3_region
        return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}
    return {"BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(env.storage_root), "base_url": None}}


STORAGES = {
    "default": shared_storage(ENV),
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [  # DRF's three, refusing NUL characters (see portal.core.api)
        "portal.core.api.JSONParser",
        "portal.core.api.FormParser",
        "portal.core.api.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "portal.core.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["portal.core.throttling.ApiRateThrottle"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Plinth API",
    "DESCRIPTION": (
        "The REST API of Plinth, the developer portal of the MLOps platform. "
        "Authenticate with `Authorization: Bearer <token>` (create a token under *API tokens*). "
        "Each token has per-minute budgets for reads, writes and expensive writes: over one, the answer is "
        "`429` with `Retry-After` (seconds). Lists take `limit` up to their maximum and page with "
        "`pageInfo.nextCursor`; request bodies over an endpoint's cap answer `413` naming it."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "ENUM_NAME_OVERRIDES": {
        "ApprovalStateEnum": "portal.governance.models.State",
        "StageStateEnum": "portal.governance.models.StageState",
        "DeploymentStatusEnum": "portal.deployments.models.Status",
        "DeploymentSourceEnum": "portal.deployments.models.Source",
        "StatusEnum": "portal.techdocs.models.BuildStatus",  # kept its name when deployments added a status
        "KindEnum": "portal.feedback.models.TargetKind",  # kept its name when incidents added a timeline kind
        "IncidentStatusEnum": "portal.incidents.models.Status",
        "IncidentSourceEnum": "portal.incidents.models.Source",
        "IncidentSeverityEnum": "portal.incidents.models.Severity",
        "IncidentAlertStatusEnum": "portal.incidents.models.AlertStatus",
        "TimelineEntryKindEnum": "portal.incidents.models.EntryKind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.core.api.postprocess_links",
        "portal.core.api.postprocess_request_id_header",
        "portal.core.api.postprocess_tags",
    ],
}

# Celery: Redis when REDIS_URL is set, otherwise a broker that needs no server
# (kombu's SQLAlchemy transport on a SQLite file under var/).
CELERY_BROKER_URL = ENV.broker_url or ENV.redis_url or f"sqla+sqlite:///{VAR_DIR / 'celery-broker.sqlite'}"
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600} if CELERY_BROKER_URL.startswith("redis") else {}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# Exactly one beat schedules (portal/core/beat.py): a lock in Redis, else a file lock under VAR_DIR.
CELERY_BEAT_SCHEDULER = "portal.core.beat:LockedScheduler"
PLINTH_BEAT_LOCK_REDIS_URL = ENV.redis_url
PLINTH_BEAT_LOCK_TTL_SECONDS = ENV.beat_lock_ttl_seconds
CELERY_BEAT_SCHEDULE: dict = {
    "catalog-refresh-locations": {"task": "catalog.tasks.refresh_due_locations", "schedule": 60.0},
    "catalog-mlflow-sync": {"task": "catalog.tasks.sync_mlflow", "schedule": 300.0},
    # Files of stopped discovery scans older than 7 days (catalog.services.SCAN_FILE_DAYS).
    "catalog-prune-scan-files": {"task": "catalog.tasks.prune_scan_files", "schedule": 3600.0},
    # Keeps the facet cube cached (it expires after an hour): no list page recounts 250k entities.
    "catalog-warm-facet-cube": {"task": "catalog.tasks.warm_facet_cube", "schedule": 1200.0},
    "governance-relay-outbox": {"task": "portal.governance.tasks.relay_outbox", "schedule": 5.0},
    "governance-check-slas": {"task": "portal.governance.tasks.check_slas", "schedule": 60.0},
    # Compliance drift: catches a changed Rego rule or a missed approval signal (portal/deployments).
    "deployments-refresh-drift": {"task": "portal.deployments.tasks.refresh_drift", "schedule": 300.0},
    "scaffolder-reap-stale-runs": {"task": "portal.scaffolder.tasks.reap_stale_runs", "schedule": 60.0},
    # Docs also change without their descriptor changing; unchanged folders are skipped by hash.
    "techdocs-rebuild": {"task": "portal.techdocs.tasks.rebuild_all_docs", "schedule": 900.0},
    # Search ranking: popularity from clicked results, decayed with time (portal/search/scoring.py).
    "search-refresh-popularity": {"task": "portal.search.tasks.refresh_popularity", "schedule": 3600.0},
    "search-repair-index": {"task": "portal.search.tasks.repair_index", "schedule": 300.0},
    # Usage analytics (docs/insights.md): drain the Redis buffer into Event, roll the current hour/day
    # up, and once a day delete raw events past the retention and create next months' partitions.
    "insights-flush-events": {"task": "portal.insights.tasks.flush_events", "schedule": 10.0},
    "insights-rollup": {"task": "portal.insights.tasks.rollup_recent", "schedule": 300.0},
    "insights-maintenance": {"task": "portal.insights.tasks.maintenance", "schedule": 86400.0},
    # Lineage run history older than PLINTH_LINEAGE_RUN_RETENTION_DAYS (each job keeps its latest run).
    "lineage-prune-runs": {"task": "portal.lineage.tasks.prune_runs", "schedule": 3600.0},
    # Scorecards (docs/operations.md): every entity once a day, the trend rollup and campaign notices.
    "scorecards-nightly": {"task": "portal.scorecards.tasks.evaluate_all", "schedule": 86400.0},
    # Org sync (docs/identity.md): teams and memberships from the catalog's Users and Groups (a no-op
    # unless PLINTH_ORG_SYNC=catalog; a catalog change to a User or Group also queues it at once).
    "catalog-org-sync": {"task": "catalog.tasks.sync_org", "schedule": 300.0},
    # SLOs (docs/operations.md, "SLOs"): every OpenSLO file read again, every SLO evaluated on Prometheus.
    "slo-evaluate": {"task": "portal.slo.tasks.evaluate_all", "schedule": float(ENV.slo_interval_seconds)},
    # FinOps (docs/finops.md): files dropped in PLINTH_COSTS_DROP_DIR, and team budget alerts (80/100 %).
    "costs-scan-drop-dir": {"task": "portal.costs.tasks.scan_drop_dir", "schedule": 300.0},
    "costs-check-budgets": {"task": "portal.costs.tasks.check_budgets", "schedule": 3600.0},
    # Expired sessions, among them abandoned single sign-on attempts (docs/identity.md, "Abandoned attempts").
    "accounts-clear-expired-sessions": {"task": "portal.accounts.tasks.clear_expired_sessions",
                                        "schedule": 3600.0},
}

# Usage analytics (portal/insights, docs/insights.md).
PLINTH_ANALYTICS = ENV.analytics
PLINTH_ANALYTICS_RETENTION_DAYS = ENV.analytics_retention_days
# Events are buffered in Redis when there is one (shared by every process), else in each process.
PLINTH_ANALYTICS_REDIS_URL = ENV.redis_url
PLINTH_ANALYTICS_REDIS_KEY = "plinth:insights:events"
PLINTH_ANALYTICS_FLUSH_THREAD = True

PLINTH_WORKER_STALE_SECONDS = ENV.worker_stale_seconds
PLINTH_HEARTBEAT_SECONDS = ENV.heartbeat_seconds

MLFLOW_TRACKING_URI = ENV.mlflow_tracking_uri
MLFLOW_UI_URL = ENV.mlflow_ui_url
PLINTH_MLFLOW_UI_URL = ENV.mlflow_ui_url
PLINTH_MLFLOW_WEBHOOK_SECRET = ENV.mlflow_webhook_secret
PLINTH_MLFLOW_WEBHOOK_TOLERANCE_SECONDS = ENV.mlflow_webhook_tolerance
# A worker queues one full MLflow sync when it starts, so pages do not wait for the first beat.
PLINTH_MLFLOW_SYNC_ON_START = ENV.mlflow_sync_on_start
MLFLOW_HTTP_TIMEOUT = 5
MLFLOW_HTTP_MAX_RETRIES = 2

# Catalog ingestion of http(s) locations.
PLINTH_CATALOG_ALLOWED_HOSTS = ENV.catalog_allowed_hosts
PLINTH_CATALOG_ALLOW_PRIVATE_URLS = ENV.catalog_allow_private_urls
PLINTH_CATALOG_MAX_BYTES = 2 * 1024 * 1024
PLINTH_CATALOG_FETCH_TIMEOUT = 10
PLINTH_CATALOG_ORPHAN_STRATEGY = "keep"  # or "delete"
PLINTH_CATALOG_REFRESH_SECONDS = 300
# Code-host integrations (docs/catalog.md#code-host-integrations): tokens per host, as JSON text or a
# list of dicts; parsed by catalog.integrations. A rate limit that resets within the wait is waited
# for; a longer one ends the scan with a message and keeps the stored entities.
PLINTH_INTEGRATIONS = ENV.integrations
PLINTH_INTEGRATIONS_RATE_LIMIT_WAIT = ENV.integrations_rate_limit_wait
# `POST /api/v1/validate-entity` carries a whole descriptor file as a JSON string (escapes can
# double its size), so it may be larger than the global cap.
PLINTH_MAX_VALIDATE_BYTES = 2 * PLINTH_CATALOG_MAX_BYTES + 256 * 1024
# Django's own check of bodies read through request.body/POST: a backstop above every per-endpoint
# cap (RequestBodyLimitMiddleware refuses oversized bodies first, with a 413 naming the limit).
# `POST /api/v1/locations/upload` carries a folder's descriptors (and the files they include).
PLINTH_MAX_UPLOAD_BYTES = 4 * PLINTH_CATALOG_MAX_BYTES + 256 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = max(PLINTH_MAX_REQUEST_BYTES, PLINTH_MAX_VALIDATE_BYTES, PLINTH_MAX_UPLOAD_BYTES)

# OpenLineage ingestion (docs/lineage.md). The spec folder (OpenLineage.json + facets/) is provided by the
# deployment; without it POST /api/v1/lineage answers 503.
PLINTH_OPENLINEAGE_SPEC_DIR = ENV.openlineage_spec_dir
PLINTH_LINEAGE_MAX_BODY_BYTES = 32 * 1024 * 1024
PLINTH_LINEAGE_MAX_BATCH = 10_000  # events per request
PLINTH_LINEAGE_MAX_DATASETS = 10_000  # inputs (and outputs) per event
PLINTH_LINEAGE_MAX_FACET_BYTES = 1024 * 1024  # one facet, serialised
PLINTH_LINEAGE_RUN_RETENTION_DAYS = ENV.lineage_run_retention_days

# SLOs (portal/slo, docs/operations.md): the Prometheus that answers the indicators' PromQL.
PLINTH_PROMETHEUS_URL = ENV.prometheus_url
PLINTH_SLO_INTERVAL_SECONDS = ENV.slo_interval_seconds
DATA_UPLOAD_MAX_MEMORY_SIZE = max(DATA_UPLOAD_MAX_MEMORY_SIZE, PLINTH_LINEAGE_MAX_BODY_BYTES)

if ENV.email_host:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST, EMAIL_PORT, EMAIL_USE_TLS = ENV.email_host, ENV.email_port, ENV.email_use_tls
    EMAIL_HOST_USER, EMAIL_HOST_PASSWORD = ENV.email_user, ENV.email_password
    EMAIL_TIMEOUT = ENV.email_timeout
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = ENV.email_from
# Feedback and roadmap (docs/insights.md): the team that owns the portal itself.
PLINTH_PLATFORM_TEAM = ENV.platform_team

# OpenID Connect sign-in (docs/identity.md). Off unless both the issuer and the client id are set.
PLINTH_OIDC_ISSUER = ENV.oidc_issuer
PLINTH_OIDC_CLIENT_ID = ENV.oidc_client_id
PLINTH_OIDC_CLIENT_SECRET = ENV.oidc_client_secret
PLINTH_OIDC_SCOPES = ENV.oidc_scopes
PLINTH_OIDC_USERNAME_CLAIM = ENV.oidc_username_claim
# The claim listing the user's groups, and what each listed group grants: {group: (team, role)}.
PLINTH_OIDC_GROUPS_CLAIM = ENV.oidc_groups_claim
PLINTH_OIDC_GROUP_MAP = ENV.oidc_group_map
# Groups whose members are platform admins (is_superuser and is_staff), decided at every sign-in.
PLINTH_OIDC_ADMIN_GROUPS = ENV.oidc_admin_groups
# Clock skew tolerated on the ID token's iat/exp/nbf, and the timeout of calls to the provider.
PLINTH_OIDC_CLOCK_SKEW_SECONDS = ENV.oidc_clock_skew
PLINTH_OIDC_TIMEOUT_SECONDS = ENV.oidc_timeout
# How long the discovery document is trusted before it is read again (the JWKS is read again at once
# when an ID token names a key it does not hold: the provider rotated its keys).
PLINTH_OIDC_METADATA_TTL_SECONDS = 3600
# A groups claim longer than this is refused (a provider bug or an attack; ~10x a large real one).
PLINTH_OIDC_MAX_GROUPS = 2000
# Password sign-in: "on" for everyone, "admins" (platform admins only: the break-glass account), "off".
PLINTH_LOCAL_LOGIN = ENV.local_login or ("admins" if ENV.oidc_issuer and ENV.oidc_client_id else "on")

# Org sync (docs/identity.md): "catalog" makes the catalog's User and Group entities the teams and
# memberships (a direct member gets PLINTH_ORG_SYNC_ROLE unless PLINTH_ORG_SYNC_ROLES names the team;
# PLINTH_ORG_SYNC_PARENT_ROLE, when set, is given in every ancestor group too).
PLINTH_ORG_SYNC = ENV.org_sync
PLINTH_ORG_SYNC_ROLE = ENV.org_sync_role
PLINTH_ORG_SYNC_ROLES = ENV.org_sync_roles
PLINTH_ORG_SYNC_PARENT_ROLE = ENV.org_sync_parent_role

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "portal.core.logging.RequestIdFilter"}},
    "formatters": {"json": {"()": "portal.core.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_id"]},
    },
    "root": {"handlers": ["console"], "level": ENV.log_level},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "celery": {"level": "INFO"},
        # Authlib's debug lines may carry request parameters; never below WARNING (no tokens in logs).
        "authlib": {"level": "WARNING"},
    },
}

MLFLOW_HOST = urlparse(MLFLOW_TRACKING_URI).hostname
CSRF_FAILURE_VIEW = "portal.core.views.csrf_failure"
PLINTH_CATALOG_FILE_ROOTS = ENV.catalog_file_roots
# Descriptors sent as content (catalog/uploads.py): one folder per upload source.
PLINTH_CATALOG_UPLOAD_ROOT = ENV.catalog_upload_root or VAR_DIR / "catalog-uploads"
PLINTH_CATALOG_READ_PROCESSES = ENV.catalog_read_processes
PLINTH_CATALOG_ADMIN_LOCATIONS_ORG_WIDE = ENV.catalog_admin_locations_org_wide
if ENV.scaffolder_root:
    # Workspaces, published repositories and per-run secret files; web and workers must share it.
    PLINTH_SCAFFOLDER_ROOT = ENV.scaffolder_root
