"""API rate limits: sliding windows counted with an atomic increment in the shared "throttle" cache.

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

Why not fixed windows alone: a client could spend its whole budget in a window's last second and
again in the next one's first, twice the limit within two seconds. The count is therefore the
sliding-window estimate: this window's requests plus the previous window's, weighted by how much of
it still lies within one period of now (Cloudflare's and nginx's approximation; exact when requests
are spread evenly). A refused request is taken back out of the count, so hammering after a 429
does not push the client's next allowed request further away.
"""

from __future__ import annotations

import contextlib
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
clock = time.time  # the tests move it
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
    now = clock()
    offset = window_offset(key, period)
    window = int((now - offset) // period)
    cache_key = f"{scope}:{key}:{period}:{window}"
    cache = caches[CACHE_ALIAS]
    # Three periods: the key must outlive its window, and the next one, which weighs it, even when
    # web nodes' clocks differ a little.
    cache.add(cache_key, 0, timeout=3 * period)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # evicted between add and incr: this request starts the window again
        cache.set(cache_key, 1, timeout=3 * period)
        count = 1
    elapsed = (now - offset) / period - window  # how far into this window, 0..1
    previous = 0  # over the limit in this window alone: the previous one does not matter
    if count <= limit:
        previous = cache.get(f"{scope}:{key}:{period}:{window - 1}") or 0
        if previous * (1 - elapsed) + count <= limit:
            return None
    with contextlib.suppress(ValueError):  # evicted meanwhile: nothing to take back
        cache.decr(cache_key)  # a refused request is not counted
    return Refusal(scope=scope, limit=limit, period=period, who=who,
                   wait=_wait(limit, period, count, previous, elapsed))


def window_offset(key: str, period: int) -> int:
    """Where `key`'s windows start within the period (seconds): keys spread over it, so that their
    windows do not all open at once."""
    return zlib.crc32(key.encode()) % period


def _wait(limit: int, period: int, count: int, previous: int, elapsed: float) -> int:
    """Seconds until one more request fits, if no other arrives meanwhile. `count` includes the refused
    request (so the accepted ones are `count - 1`); `elapsed` is the fraction of this window gone."""
    if count <= limit and previous:
        # Within this window: the previous window's weight must fall until `count` requests fit.
        needed = 1 - (limit - count) / previous
        return _seconds((needed - elapsed) * period)
    # In the next window this one's accepted requests are the previous ones: `count - 1` weighted
    # down until one more fits.
    accepted = count - 1
    needed = 1 - (limit - 1) / accepted if accepted > limit - 1 else 0
    return _seconds((1 - elapsed + max(0.0, needed)) * period)


def _seconds(value: float) -> int:
    """Whole seconds, at least 1 (a microsecond over a whole second, float noise, is not one more)."""
    return max(1, math.ceil(value - 1e-6))


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
