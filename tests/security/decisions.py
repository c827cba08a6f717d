"""Times every permission decision the authorization matrix causes, without changing one.

Each public function of `portal.accounts.permissions` (and `OwnerClaims`' methods) is wrapped with a
`time.perf_counter_ns` timer while the matrix runs, in the permission module and wherever another
module bound it to a name of its own at import. Only outermost calls count as decisions: `require`
calling `can` twice is one decision, timed as a whole. The wrappers add two clock reads per nested
call, so the figures are a slight overestimate.

Two figures per decision: **gross**, as the caller waits, and **net** of reading who the user is — the
session's user (Django's lazy `request.user`, loaded by whatever touches it first) and their team roles
(`permissions._read_roles`, one indexed query per request, cached on the user). Those reads happen once
per request whatever the number of decisions; the first decision of a request pays them and the others
do not, which is what puts the gross p95 on the database. Their time is measured by wrapping the two
loaders and subtracted from the decision that caused them.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from portal.accounts import permissions

# Not decisions: bookkeeping, and applying one to a queryset (filter_visible's QuerySet.filter() clone is
# the selector's query building; the decision inside it, visible_q, is timed as one).
NOT_DECISIONS = {"forget_roles", "filter_visible"}
ARTIFACT = Path(__file__).resolve().parents[2] / "test-artifacts" / "authz-matrix.json"

# Filled by the matrix module, printed by tests/security/conftest.py at the end of the session.
REPORT: dict = {}


class DecisionTimer:
    def __init__(self) -> None:
        self.samples_ns: list[int] = []
        self.net_ns: list[int] = []  # the same decisions without the identity reads they caused
        self.identity_ns: list[int] = []  # each identity read (user, roles) made inside a decision
        self._identity_in_decision = 0
        self.named_ns: dict[str, list[int]] = defaultdict(list)
        self.per_request: dict[str, list[int]] = defaultdict(list)  # "name METHOD" -> decisions per request
        self.by_function: dict[str, int] = defaultdict(int)
        self.requests = 0
        self._depth = 0
        self._count = 0
        self.active = False

    def _wrap(self, name: str, func):
        timer = self

        @functools.wraps(func)
        def timed(*args, **kwargs):
            if not timer.active or timer._depth:
                timer._depth += 1
                try:
                    return func(*args, **kwargs)
                finally:
                    timer._depth -= 1
            timer._depth += 1
            timer._identity_in_decision = 0
            started = time.perf_counter_ns()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter_ns() - started
                timer.samples_ns.append(elapsed)
                timer.net_ns.append(max(0, elapsed - timer._identity_in_decision))
                timer.named_ns[name].append(elapsed)
                timer._depth -= 1
                timer._count += 1
                timer.by_function[name] += 1

        return timed

    def _wrap_identity(self, func):
        timer = self

        @functools.wraps(func)
        def timed(*args, **kwargs):
            if not (timer.active and timer._depth):
                return func(*args, **kwargs)
            started = time.perf_counter_ns()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter_ns() - started
                timer._identity_in_decision += elapsed
                timer.identity_ns.append(elapsed)

        return timed

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from django.contrib.auth import middleware as auth_middleware

        monkeypatch.setattr(permissions, "_read_roles", self._wrap_identity(permissions._read_roles))
        monkeypatch.setattr(auth_middleware, "get_user", self._wrap_identity(auth_middleware.get_user))
        wrapped = {}
        for name, func in vars(permissions).items():
            if (inspect.isfunction(func) and func.__module__ == permissions.__name__
                    and not name.startswith("_") and name not in NOT_DECISIONS):
                wrapped[func] = self._wrap(name, func)
                monkeypatch.setattr(permissions, name, wrapped[func])
        for name in ("refusal", "may_take_over"):
            monkeypatch.setattr(permissions.OwnerClaims, name,
                                self._wrap(f"OwnerClaims.{name}", getattr(permissions.OwnerClaims, name)))
        # Names bound elsewhere at import (`visible_requests_q = permissions.visible_requests_q`).
        for module in list(sys.modules.values()):
            if module is permissions or not getattr(module, "__name__", "").startswith(("portal.", "catalog.")):
                continue
            for attr, value in list(vars(module).items()):
                if inspect.isfunction(value) and value in wrapped:
                    monkeypatch.setattr(module, attr, wrapped[value])

    def request_started(self) -> None:
        self._count = 0
        self.active = True

    def request_finished(self, key: str) -> int:
        self.active = False
        self.requests += 1
        self.per_request[key].append(self._count)
        return self._count

    def summary(self) -> dict:
        samples = sorted(self.samples_ns)

        def pct(p: float) -> float:
            if not samples:
                return 0.0
            return samples[min(len(samples) - 1, int(round(p / 100 * (len(samples) - 1))))] / 1000

        net = sorted(self.net_ns)
        worst = sorted(((max(v), k) for k, v in self.per_request.items()), reverse=True)[:10]
        return {"requests": self.requests, "decisions": len(samples), "p50_us": round(pct(50), 1),
                "p95_us": round(pct(95), 1), "p99_us": round(pct(99), 1), "max_us": round(pct(100), 1),
                "net_p50_us": _pct(net, 50), "net_p95_us": _pct(net, 95), "net_p99_us": _pct(net, 99),
                "identity_reads": len(self.identity_ns), "identity_read_p50_us": _pct(self.identity_ns, 50),
                "most_decisions_per_request": [{"url": k, "decisions": n} for n, k in worst],
                "by_function": {name: {"calls": len(v), "p50_us": _pct(v, 50), "p95_us": _pct(v, 95)}
                                for name, v in sorted(self.named_ns.items(), key=lambda kv: -len(kv[1]))}}


def _pct(values: list[int], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] / 1000, 1) if ordered else 0.0


def write_report(summary: dict, extra: dict) -> None:
    REPORT.clear()
    REPORT.update(summary, **extra)
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(REPORT, indent=2) + "\n")


def summary_line() -> str | None:
    if not REPORT:
        return None
    return (f"authz-matrix: {REPORT['requests']} requests ({REPORT['shape']}), {REPORT['decisions']} permission "
            f"decisions, p50 {REPORT['p50_us']} µs, p95 {REPORT['p95_us']} µs; net of the once-per-request "
            f"identity reads ({REPORT['identity_reads']}, p50 {REPORT['identity_read_p50_us']} µs each): "
            f"p50 {REPORT['net_p50_us']} µs, p95 {REPORT['net_p95_us']} µs (details: "
            f"{ARTIFACT.relative_to(ARTIFACT.parents[1])})")
