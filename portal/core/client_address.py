"""The client's network address, as the throttles, the audit trail and the access log see it.

`REMOTE_ADDR` is the peer that opened the connection. Behind reverse proxies that peer is the
nearest proxy, and the client is named in `X-Forwarded-For`, which each proxy extends on the
right. Everything left of what our own proxies appended was written by the client and may be
forged, so the header is read only when `PLINTH_TRUSTED_PROXY_COUNT` says how many proxies we
run (default 0: the header is ignored), and then only the entry the outermost of them appended.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest

# IPv6 clients usually hold a whole /64: counting failures per single address would let one
# client rotate through 2**64 of them.
IPV6_THROTTLE_PREFIX = 64


def client_address(request: HttpRequest) -> str | None:
    """The address of the client, or None when the server gave no usable REMOTE_ADDR."""
    remote = _valid(request.META.get("REMOTE_ADDR", ""))
    proxies = settings.PLINTH_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    if len(hops) < proxies:
        # Fewer entries than proxies: the request did not come through all of them (or the count
        # is wrong). Whatever the header holds came from the client; the peer at least is real.
        return remote
    return _valid(hops[-proxies]) or remote


def throttle_key(address: str | None) -> str:
    """The unit that per-address limits count: the address itself, or its /64 for IPv6."""
    if not address:
        return "unknown"
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/{IPV6_THROTTLE_PREFIX}", strict=False))
    return str(ip)


def _valid(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None
