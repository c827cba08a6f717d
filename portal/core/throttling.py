"""API rate limits: fixed windows counted with an atomic increment in the shared "throttle" cache.

Who is counted: the token (two tokens of one user are limited independently), the user for
session-authenticated calls, the client address (an IPv6 /64) for anonymous ones. What is
counted: every request against "read" or "write" by its method; the expensive writes (views
decorated with `throttle_classes(EXPENSIVE)`) also against "expensive". Unauthenticated calls
that end in 401 count against "anon" per address (`count_unauthenticated`, called by the API's
exception handler, because DRF checks permissions before it runs throttles).

Why not DRF's SimpleRateThrottle: it keeps a list of timestamps per client and writes it back
with a plain get/set, so parallel requests overwrite each other's entries and pass the limit.
One INCR per window (atomic in Redis, and on one host in LocMem) cannot be raced that way.
Each client's windows start at its own offset (a hash of its key), so clients do not all get
their budget back in the same second.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import caches
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import BaseThrottle

from portal.settings.env import parse_rate

from .client_address import client_address, throttle_key

CACHE_ALIAS = "throttle"
PERIOD_NAMES = {1: "second", 60: "minute", 3600: "hour", 86400: "day"}


@dataclass(frozen=True)
class Refusal:
    """Why a request was refused: what the API's 429 body says."""

    scope: str
    limit: int
    period: int
    who: str
    wait: int

    @property
    def message(self) -> str:
        period = PERIOD_NAMES.get(self.period) or f"{self.period} seconds"
        return (f"Rate limit exceeded: at most {self.limit} {self.scope} requests per {period} "
                f"for this {self.who}. Retry after {self.wait} second{'' if self.wait == 1 else 's'}.")


def requester(request) -> tuple[str, str]:
    """(counting key, what it is) for a DRF request."""
    token_id = getattr(request.auth, "pk", None)
    if token_id is not None:
        return f"token:{token_id}", "token"
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}", "user"
    return f"addr:{throttle_key(client_address(request))}", "address"


def hit(scope: str, key: str, who: str) -> Refusal | None:
    """Count one request of `key` against `scope`; a Refusal when it is over the limit."""
    rate = parse_rate(settings.PLINTH_API_RATES[scope])
    if rate is None:
        return None
    limit, period = rate
    now = time.time()
    offset = zlib.crc32(key.encode()) % period
    window = int((now - offset) // period)
    cache_key = f"{scope}:{key}:{period}:{window}"
    cache = caches[CACHE_ALIAS]
    # Twice the period: the key must outlive its window even when web nodes' clocks differ a little.
    cache.add(cache_key, 0, timeout=2 * period)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr: this request starts the window again
        cache.set(cache_key, 1, timeout=2 * period)
        count = 1
    if count <= limit:
        return None
    reset_at = (window + 1) * period + offset
    return Refusal(scope=scope, limit=limit, period=period, who=who, wait=max(1, math.ceil(reset_at - now)))


class _ScopedThrottle(BaseThrottle):
    def scope(self, request) -> str | None:
        raise NotImplementedError

    def allow_request(self, request, view) -> bool:
        scope = self.scope(request)
        if scope is None:
            return True
        key, who = requester(request)
        if key.startswith("addr:"):
            scope = "anon"
        self.refusal = hit(scope, key, who)
        if self.refusal is None:
            return True
        # The exception handler names the scope and the limit in the 429 body (the longest wait
        # when several scopes refuse, which is also the Retry-After DRF sends).
        earlier = getattr(request._request, "rate_limit_refusal", None)
        if earlier is None or earlier.wait < self.refusal.wait:
            request._request.rate_limit_refusal = self.refusal
        return False

    def wait(self) -> float | None:
        return self.refusal.wait if getattr(self, "refusal", None) else None


class ApiRateThrottle(_ScopedThrottle):
    """Every API call: "read" for safe methods, "write" for the others (the default class)."""

    def scope(self, request) -> str | None:
        return "read" if request.method in SAFE_METHODS else "write"


class ExpensiveWriteThrottle(_ScopedThrottle):
    """Writes that parse, fetch, run or queue work; safe methods of the same view are not counted."""

    def scope(self, request) -> str | None:
        return None if request.method in SAFE_METHODS else "expensive"


EXPENSIVE = [ApiRateThrottle, ExpensiveWriteThrottle]


def count_unauthenticated(request) -> Refusal | None:
    """Count a request that failed authentication against "anon", per client address."""
    return hit("anon", f"addr:{throttle_key(client_address(request))}", "address")
