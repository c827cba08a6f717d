"""`manage.py devstack`'s Prometheus (make run): started over the demo series with its URL given to the
web process and the worker, a configured PLINTH_PROMETHEUS_URL used as it is, and a machine without
Debian's prometheus package told so while the stack goes on."""

from __future__ import annotations

import io
import json
import os
import urllib.parse
import urllib.request

from portal.site.management.commands.devstack import Command, Supervisor


def _supervisor(tmp_path, env):
    out = io.StringIO()
    return Supervisor(out, env, tmp_path), out


def test_devstack_starts_prometheus_over_the_demo_series_and_reuses_them(tmp_path):
    env: dict[str, str] = {"PATH": os.environ["PATH"]}
    sup, out = _supervisor(tmp_path, env)
    try:
        Command()._start_prometheus(sup, env, tmp_path, 0, demo=True)
        url = env["PLINTH_PROMETHEUS_URL"]
        assert url.startswith("http://127.0.0.1:") and "demo series built in" in out.getvalue()
        query = urllib.parse.urlencode({"query": 'count(model_predictions_total{model="fraud-detector"})'})
        with urllib.request.urlopen(f"{url}/api/v1/query?{query}", timeout=10) as resp:  # noqa: S310 (loopback)
            assert json.load(resp)["data"]["result"][0]["value"][1] == "2"  # ok and error, at "now"
    finally:
        sup.stop_all()
    env.pop("PLINTH_PROMETHEUS_URL")
    sup, out = _supervisor(tmp_path, env)
    try:
        Command()._start_prometheus(sup, env, tmp_path, 0, demo=True)
        assert "reusing the demo series anchored" in out.getvalue()  # the second start builds nothing
    finally:
        sup.stop_all()


def test_a_configured_prometheus_is_used_and_a_missing_one_is_reported(tmp_path):
    env = {"PATH": str(tmp_path), "PLINTH_PROMETHEUS_URL": "http://prometheus.example:9090"}
    sup, out = _supervisor(tmp_path, env)
    Command()._start_prometheus(sup, env, tmp_path, 0, demo=True)
    assert "using Prometheus at http://prometheus.example:9090" in out.getvalue() and not sup.children
    env = {"PATH": str(tmp_path)}  # no prometheus on this PATH
    sup, out = _supervisor(tmp_path, env)
    Command()._start_prometheus(sup, env, tmp_path, 0, demo=True)
    assert "Prometheus not found (run `make system-deps`" in out.getvalue()
    assert "PLINTH_PROMETHEUS_URL" not in env and not sup.children
