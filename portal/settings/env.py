"""The one place where Plinth reads its environment.

Every setting that can vary between machines is read here and nowhere else, so that
`docs/deployment.md` can list them all and a typo in a variable name fails loudly.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


class ImproperEnvironment(RuntimeError):
    """Raised when a required variable is missing or malformed."""


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperEnvironment(f"{name}={raw!r} is not a boolean (use true/false)")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperEnvironment(f"{name}={raw!r} is not an integer") from exc


def _optional_int(name: str, minimum: int = 0) -> int | None:
    """An integer that is None when unset, so each profile can pick its own default."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    value = _int(name, 0)
    if value < minimum:
        raise ImproperEnvironment(f"{name}={raw!r} must be at least {minimum}")
    return value


RATE_PERIODS = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
                "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


def parse_rate(text: str) -> tuple[int, int] | None:
    """`"120/min"`, `"1000/hour"`, `"30/15min"` → (requests, seconds); `"off"` → None (no limit).

    Raises ValueError naming the accepted forms."""
    if text.strip().lower() in {"off", "none", "unlimited"}:
        return None
    match = RATE_RE.match(text.lower())
    if (not match or match.group(3) not in RATE_PERIODS or match.group(2) == "0"
            or int(match.group(1)) == 0):
        raise ValueError(f"{text!r} is not a rate: use COUNT/PERIOD such as 120/min, 1000/hour, 30/15min "
                         f"(periods: s, min, hour, day), or 'off'")
    count = int(match.group(1))
    return count, int(match.group(2) or 1) * RATE_PERIODS[match.group(3)]


def _rate(name: str) -> str | None:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return None
    try:
        parse_rate(raw)
    except ValueError as exc:
        raise ImproperEnvironment(f"{name}: {exc}") from exc
    return raw.strip()


def _list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


ROLES = ("viewer", "member", "maintainer", "reviewer", "admin")  # portal.accounts.models.Role


def _choice(name: str, choices: tuple[str, ...]) -> str | None:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw:
        return None
    aliases = {"true": "on", "yes": "on", "1": "on", "false": "off", "no": "off", "0": "off"}
    value = aliases.get(raw, raw)
    if value == "on" and "on" not in choices and "catalog" in choices:
        value = "catalog"
    if value not in choices:
        raise ImproperEnvironment(f"{name}={raw!r}: use one of {', '.join(choices)}")
    return value


def _role(name: str) -> str | None:
    raw = (os.environ.get(name) or "").strip().lower()
    if not raw or raw in {"none", "off"}:
        return None
    if raw not in ROLES:
        raise ImproperEnvironment(f"{name}={raw!r} is not a role (roles: {', '.join(ROLES)})")
    return raw


def _pairs(name: str) -> list[tuple[str, str]]:
    """`KEY=VALUE` items separated by commas or semicolons (a key may hold spaces and slashes)."""
    raw = os.environ.get(name) or ""
    pairs = []
    for item in re.split(r"[;,\n]", raw):
        if not item.strip():
            continue
        key, sep, value = item.rpartition("=")
        if not sep or not key.strip() or not value.strip():
            raise ImproperEnvironment(f"{name}: {item.strip()!r} is not KEY=VALUE")
        pairs.append((key.strip(), value.strip()))
    return pairs


def _group_map(name: str) -> dict[str, tuple[str, str]]:
    """`idp-group=team:role, …` → {idp-group: (team, role)}; the role defaults to member."""
    mapping = {}
    for key, value in _pairs(name):
        team, _, role = value.partition(":")
        role = (role or "member").strip().lower()
        if role not in ROLES:
            raise ImproperEnvironment(f"{name}: {key}={value}: {role!r} is not a role (roles: {', '.join(ROLES)})")
        if not re.fullmatch(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*", team.strip()):
            raise ImproperEnvironment(f"{name}: {key}={value}: {team.strip()!r} is not a team name")
        mapping[key] = (team.strip(), role)
    return mapping


def _team_roles(name: str) -> dict[str, str]:
    """`team=role, …` → {team: role}."""
    roles = {}
    for team, role in _pairs(name):
        if role.lower() not in ROLES:
            raise ImproperEnvironment(f"{name}: {team}={role}: not a role (roles: {', '.join(ROLES)})")
        roles[team.lower()] = role.lower()
    return roles


@dataclass(frozen=True)
class Environment:
    secret_key: str | None
    debug: bool | None
    database_url: str | None
    web_lock_timeout: int
    redis_url: str | None
    broker_url: str | None
    var_dir: Path
    allowed_hosts: list[str]
    csrf_trusted_origins: list[str]
    mlflow_tracking_uri: str
    mlflow_ui_url: str
    mlflow_webhook_secret: str | None
    mlflow_webhook_tolerance: int
    mlflow_sync_on_start: bool
    worker_stale_seconds: int
    heartbeat_seconds: int
    log_level: str
    secure_ssl_redirect: bool
    catalog_allowed_hosts: list[str]
    catalog_allow_private_urls: bool
    integrations: str
    integrations_rate_limit_wait: int
    catalog_file_roots: list[str]
    catalog_read_processes: int
    catalog_admin_locations_org_wide: bool
    scaffolder_root: str | None
    trusted_proxy_count: int
    login_max_failures: int | None
    login_max_failures_per_address: int | None
    login_window_seconds: int | None
    api_rate_read: str | None
    api_rate_write: str | None
    api_rate_expensive: str | None
    api_rate_anon: str | None
    max_request_bytes: int | None
    email_host: str | None
    email_port: int
    email_user: str
    email_password: str
    email_use_tls: bool
    email_timeout: int
    email_from: str
    analytics: bool
    analytics_retention_days: int
    platform_team: str
    openlineage_spec_dir: str
    lineage_run_retention_days: int
    oidc_issuer: str | None
    oidc_client_id: str | None
    oidc_client_secret: str | None
    oidc_scopes: str
    oidc_username_claim: str
    oidc_groups_claim: str
    oidc_group_map: dict[str, tuple[str, str]]
    oidc_admin_groups: list[str]
    oidc_clock_skew: int
    oidc_timeout: int
    local_login: str | None
    org_sync: str
    org_sync_role: str
    org_sync_roles: dict[str, str]
    org_sync_parent_role: str | None
    prometheus_url: str
    slo_interval_seconds: int
    beat_lock_ttl_seconds: int
    local_http: bool
    storage_root: Path
    catalog_upload_root: Path | None
    s3_bucket: str | None
    s3_endpoint_url: str | None
    s3_region: str | None
    s3_prefix: str


def read() -> Environment:
    var_dir = Path(os.environ.get("PLINTH_VAR_DIR") or BASE_DIR / "var")
    mlflow = os.environ.get("MLFLOW_TRACKING_URI") or "http://127.0.0.1:5001"
    return Environment(
        secret_key=os.environ.get("SECRET_KEY") or None,
        debug=_bool("DEBUG", False) if os.environ.get("DEBUG") else None,
        database_url=os.environ.get("DATABASE_URL") or None,
        # PostgreSQL: a web request stops waiting for a table or row lock after this many seconds and
        # answers 503 (0: it waits, as workers and commands do). Under gunicorn's --timeout (60 s).
        web_lock_timeout=_int("PLINTH_WEB_LOCK_TIMEOUT_SECONDS", 15),
        redis_url=os.environ.get("REDIS_URL") or None,
        broker_url=os.environ.get("CELERY_BROKER_URL") or None,
        var_dir=var_dir,
        allowed_hosts=_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"]),
        csrf_trusted_origins=_list("CSRF_TRUSTED_ORIGINS", []),
        mlflow_tracking_uri=mlflow,
        # Where people open MLflow (links on model pages); the tracking URI may be an internal address.
        mlflow_ui_url=(os.environ.get("PLINTH_MLFLOW_UI_URL") or os.environ.get("MLFLOW_UI_URL") or mlflow).rstrip("/"),
        # The secret MLflow signs its webhook deliveries with; unset: the webhook endpoint answers 404.
        mlflow_webhook_secret=os.environ.get("PLINTH_MLFLOW_WEBHOOK_SECRET") or None,
        mlflow_webhook_tolerance=_int("PLINTH_MLFLOW_WEBHOOK_TOLERANCE_SECONDS", 300),
        mlflow_sync_on_start=_bool("PLINTH_MLFLOW_SYNC_ON_START", True),
        worker_stale_seconds=_int("PLINTH_WORKER_STALE_SECONDS", 30),
        heartbeat_seconds=_int("PLINTH_HEARTBEAT_SECONDS", 5),
        log_level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        secure_ssl_redirect=_bool("SECURE_SSL_REDIRECT", True),
        catalog_allowed_hosts=_list("PLINTH_CATALOG_ALLOWED_HOSTS", []),
        catalog_allow_private_urls=_bool("PLINTH_CATALOG_ALLOW_PRIVATE_URLS", False),
        # Code-host integrations (catalog/integrations.py): a JSON list, parsed and checked there.
        integrations=os.environ.get("PLINTH_INTEGRATIONS", ""),
        integrations_rate_limit_wait=_int("PLINTH_INTEGRATIONS_RATE_LIMIT_WAIT", 60),
        # Folders that users may register file/directory locations from (the server operator's
        # `manage.py catalog register` is not limited). Default: the folder holding this checkout.
        catalog_file_roots=_list("PLINTH_CATALOG_FILE_ROOTS", [str(BASE_DIR.parent)]),
        # Processes that parse and validate the files of a large directory location in parallel
        # (1 = in the registering process only).
        catalog_read_processes=_int("PLINTH_CATALOG_READ_PROCESSES", min(8, os.cpu_count() or 1)),
        # A location registered by a platform admin is org-wide: its refreshes store any owner its
        # descriptors name (docs/security.md). Off: refreshed with the registrant's current rights.
        catalog_admin_locations_org_wide=_bool("PLINTH_CATALOG_ADMIN_LOCATIONS_ORG_WIDE", True),
        scaffolder_root=os.environ.get("PLINTH_SCAFFOLDER_ROOT") or None,
        # Abuse limits (docs/security.md). Unset ones take the profile's default (base.py; test.py
        # sets generous ones so the suite is never throttled by accident).
        trusted_proxy_count=_optional_int("PLINTH_TRUSTED_PROXY_COUNT") or 0,
        login_max_failures=_optional_int("PLINTH_LOGIN_MAX_FAILURES", minimum=1),
        login_max_failures_per_address=_optional_int("PLINTH_LOGIN_MAX_FAILURES_PER_ADDRESS", minimum=1),
        login_window_seconds=_optional_int("PLINTH_LOGIN_WINDOW_SECONDS", minimum=1),
        api_rate_read=_rate("PLINTH_API_RATE_READ"),
        api_rate_write=_rate("PLINTH_API_RATE_WRITE"),
        api_rate_expensive=_rate("PLINTH_API_RATE_EXPENSIVE"),
        api_rate_anon=_rate("PLINTH_API_RATE_ANON"),
        max_request_bytes=_optional_int("PLINTH_MAX_REQUEST_BYTES", minimum=1024),
        # Notification e-mail goes to this SMTP server; unset: e-mails are written to the log.
        email_host=os.environ.get("EMAIL_HOST") or None,
        email_port=_int("EMAIL_PORT", 25),
        email_user=os.environ.get("EMAIL_HOST_USER", ""),
        email_password=os.environ.get("EMAIL_HOST_PASSWORD", ""),
        email_use_tls=_bool("EMAIL_USE_TLS", False),
        # A server that stops answering must not hold a worker process for ever.
        email_timeout=_int("EMAIL_TIMEOUT", 30),
        email_from=os.environ.get("DEFAULT_FROM_EMAIL") or "plinth@localhost",
        # Usage analytics (docs/insights.md): PLINTH_ANALYTICS=off captures nothing; raw events are
        # deleted after the retention (rollups stay).
        analytics=_bool("PLINTH_ANALYTICS", True),
        analytics_retention_days=_int("PLINTH_ANALYTICS_RETENTION_DAYS", 90),
        # The team that owns the portal itself: feedback about the portal (and about things no team
        # owns) goes to its maintainers and admins (docs/insights.md).
        platform_team=(os.environ.get("PLINTH_PLATFORM_TEAM") or "platform").strip().lower(),
        # The OpenLineage JSON Schema folder (OpenLineage.json + facets/), see docs/lineage.md.
        openlineage_spec_dir=os.environ.get("PLINTH_OPENLINEAGE_SPEC_DIR", ""),
        # Lineage runs that ended longer ago are pruned hourly (0: kept for ever).
        lineage_run_retention_days=_int("PLINTH_LINEAGE_RUN_RETENTION_DAYS", 90),
        # OpenID Connect sign-in (docs/identity.md): on when the issuer and client id are set.
        oidc_issuer=(os.environ.get("PLINTH_OIDC_ISSUER") or "").strip().rstrip("/") or None,
        oidc_client_id=(os.environ.get("PLINTH_OIDC_CLIENT_ID") or "").strip() or None,
        oidc_client_secret=os.environ.get("PLINTH_OIDC_CLIENT_SECRET") or None,
        oidc_scopes=(os.environ.get("PLINTH_OIDC_SCOPES") or "openid email profile").strip(),
        oidc_username_claim=(os.environ.get("PLINTH_OIDC_USERNAME_CLAIM") or "preferred_username").strip(),
        oidc_groups_claim=(os.environ.get("PLINTH_OIDC_GROUPS_CLAIM") or "groups").strip(),
        oidc_group_map=_group_map("PLINTH_OIDC_GROUP_MAP"),
        oidc_admin_groups=_list("PLINTH_OIDC_ADMIN_GROUPS", []),
        oidc_clock_skew=_int("PLINTH_OIDC_CLOCK_SKEW_SECONDS", 120),
        oidc_timeout=_int("PLINTH_OIDC_TIMEOUT_SECONDS", 10),
        # Password sign-in: on (everyone), admins (platform admins only: the break-glass account), off.
        # Unset: on without OpenID Connect, admins with it.
        local_login=_choice("PLINTH_LOCAL_LOGIN", ("on", "admins", "off")),
        # Org sync (docs/identity.md): catalog User and Group entities become teams and memberships.
        org_sync=_choice("PLINTH_ORG_SYNC", ("off", "catalog")) or "off",
        org_sync_role=_role("PLINTH_ORG_SYNC_ROLE") or "member",
        org_sync_roles=_team_roles("PLINTH_ORG_SYNC_ROLES"),
        org_sync_parent_role=_role("PLINTH_ORG_SYNC_PARENT_ROLE"),
        prometheus_url=os.environ.get("PLINTH_PROMETHEUS_URL", "").strip().rstrip("/"),
        slo_interval_seconds=max(30, _int("PLINTH_SLO_INTERVAL_SECONDS", 300)),
        # Exactly one beat (portal/core/beat.py): the Redis lock's TTL; a standby takes over within it.
        beat_lock_ttl_seconds=max(2, _int("PLINTH_BEAT_LOCK_TTL_SECONDS", 30)),
        # `make run PROFILE=prod` only: the production profile over plain http on loopback (prod.py).
        local_http=_bool("PLINTH_LOCAL_HTTP", False),
        # What one node writes and another serves (docs/deployment.md#no-state-on-a-nodes-disk): a folder
        # here, object storage (S3 or compatible) in production when PLINTH_S3_BUCKET is set.
        storage_root=Path(os.environ.get("PLINTH_STORAGE_ROOT") or var_dir / "storage"),
        # Uploaded descriptor folders: a location's target is their absolute path, so several machines
        # need one shared mount here (docs/deployment.md#no-state-on-a-nodes-disk).
        catalog_upload_root=Path(os.environ["PLINTH_CATALOG_UPLOAD_ROOT"]) if os.environ.get("PLINTH_CATALOG_UPLOAD_ROOT")
        else None,
        s3_bucket=os.environ.get("PLINTH_S3_BUCKET") or None,
        s3_endpoint_url=os.environ.get("PLINTH_S3_ENDPOINT_URL") or None,
        s3_region=os.environ.get("PLINTH_S3_REGION") or None,
        s3_prefix=(os.environ.get("PLINTH_S3_PREFIX") or "").strip("/"),
    )


ENV = read()
