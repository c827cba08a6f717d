"""SDK and CLI fixtures: the live server (a real HTTP port) with the demo organisation, API tokens, and
`plinth` run as its own process, as a user or a CI job runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.governance.conftest import fraud_versions, mlflow_fraud, worker_env  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
PLINTH = str(Path(sys.executable).parent / "plinth")


@pytest.fixture
def portal(live_server, demo_org):
    """The live server's URL and a token per demo user (`portal.token("alice")`)."""
    from portal.accounts import services as account_services

    class Portal:
        url = live_server.url
        users = demo_org["users"]

        def token(self, username: str) -> str:
            _, raw = account_services.token_create(user=demo_org["users"][username], name="sdk tests")
            return raw

    return Portal()


@pytest.fixture
def cli_env(tmp_path):
    """A clean environment for `plinth`: its own config folder, no colour, no retries (fast failures)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    env.update({"XDG_CONFIG_HOME": str(tmp_path / "config"), "HOME": str(tmp_path), "PLINTH_RETRIES": "0",
                "PATH": f"{Path(PLINTH).parent}{os.pathsep}{env.get('PATH', '')}"})
    return env


@pytest.fixture
def plinth(cli_env, tmp_path):
    """Run `plinth ARGS…` in a subprocess; returns the CompletedProcess (text)."""

    def run(*args: str, env: dict | None = None, input: str | None = None, timeout: float = 60):  # noqa: A002
        return subprocess.run([PLINTH, *args], env={**cli_env, **(env or {})}, capture_output=True, text=True,
                              input=input, timeout=timeout, cwd=tmp_path)

    return run
