"""The Prometheus HTTP API client the SLO evaluation uses (instant queries only), on the standard
library so the portal needs no extra HTTP package. Two failures are told apart, because the page shows
them differently: Prometheus refused the query (`QueryError`: the PromQL is wrong, shown on the tab as
the SLO's error) and Prometheus could not be asked (`Unreachable`: the last value stays, marked stale)."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime

MAX_BODY = 8 * 1024 * 1024


class QueryError(Exception):
    """Prometheus answered, and refused the query (bad_data, execution errors)."""


class Unreachable(Exception):
    """No answer: connection refused, timeout, an HTTP error without Prometheus' JSON, not configured."""


class NotConfigured(Unreachable):
    """No Prometheus is set for this portal: said to users as a fact of the portal, not an outage."""

    def __init__(self) -> None:
        super().__init__("this portal is not connected to Prometheus (an administrator sets PLINTH_PROMETHEUS_URL)")


def query(base_url: str, promql: str, at: datetime, timeout: float) -> list[tuple[dict, float]]:
    """An instant query at `at`: [(labels, value)] of the vector (a scalar is one unlabelled sample).
    NaN and infinite values are dropped (a ratio over no traffic, a count divided by zero): no JSON
    column stores them, and a window they stand for has no usable value."""
    if not base_url:
        raise NotConfigured()
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https"):
        raise Unreachable(f"PLINTH_PROMETHEUS_URL must be an http(s) URL, not {base_url[:80]!r}")
    body = urllib.parse.urlencode({"query": promql, "time": f"{at.timestamp():.3f}"}).encode()
    request = urllib.request.Request(f"{base_url}/api/v1/query", data=body, method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 (scheme checked above)
            payload = resp.read(MAX_BODY + 1)
    except urllib.error.HTTPError as exc:  # 400/422/503 carry Prometheus' error JSON
        payload = exc.read(MAX_BODY + 1)
        try:
            answer = json.loads(payload)
        except ValueError:
            raise Unreachable(f"HTTP {exc.code} from {base_url}") from None
        if not isinstance(answer, dict):
            raise Unreachable(f"HTTP {exc.code} from {base_url}") from None
        if exc.code in (400, 422) and answer.get("status") == "error":
            raise QueryError(f"{answer.get('errorType', 'error')}: {answer.get('error', '')}"[:1000]) from None
        raise Unreachable(f"HTTP {exc.code} from {base_url}: {str(answer.get('error', ''))[:300]}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot reach {base_url}: {reason}"[:500]) from None
    if len(payload) > MAX_BODY:
        raise QueryError(f"the answer is larger than {MAX_BODY // (1024 * 1024)} MiB")
    try:
        answer = json.loads(payload)
    except ValueError:
        raise Unreachable(f"{base_url} did not answer with JSON") from None
    try:
        return _rows(answer)
    except (AttributeError, TypeError, KeyError, IndexError, ValueError):  # JSON, but not Prometheus' shape
        raise Unreachable(f"{base_url} answered JSON that is not a Prometheus query result") from None


def _rows(answer: dict) -> list[tuple[dict, float]]:
    if answer.get("status") != "success":
        raise QueryError(f"{answer.get('errorType', 'error')}: {answer.get('error', '')}"[:1000])
    data = answer.get("data") or {}
    if data.get("resultType") == "scalar":
        rows = [({}, data["result"][1])]
    elif data.get("resultType") == "vector":
        rows = [(r.get("metric", {}), r["value"][1]) for r in data.get("result", [])]
    else:
        raise QueryError(f"the query must return an instant vector or a scalar, not a {data.get('resultType')}")
    out = []
    for labels, raw in rows:
        value = float(raw)
        if math.isfinite(value):  # NaN: a ratio over no traffic; ±Inf: a count divided by zero
            out.append((labels, value))
    return out
