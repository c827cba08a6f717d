"""The locked dependency set: it covers pyproject.toml, the test environment is exactly it, and the
audit step fails on a known vulnerability (pip-audit's answer is stood in for: no vulnerability
service is reachable from this machine)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\]+)", re.M)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(lock: str) -> dict[str, str]:
    return {_norm(n): v for n, v in PIN.findall((ROOT / "requirements" / lock).read_text())}


def _names(requirements: list[str]) -> set[str]:
    return {_norm(re.split(r"[\[<>=!~; ]", r, maxsplit=1)[0]) for r in requirements}


def test_locks_cover_pyproject_and_carry_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    prod, dev = _pins("prod.lock"), _pins("dev.lock")
    assert _names(project["dependencies"]) <= set(prod), "run `make lock`: prod.lock misses a dependency"
    assert _names(project["dependencies"] + project["optional-dependencies"]["dev"]) <= set(dev), "run `make lock`"
    assert "setuptools" in prod and "setuptools" in dev  # the build backend, installed without isolation
    for lock in ("prod.lock", "dev.lock"):
        text = (ROOT / "requirements" / lock).read_text()
        assert all(
            "--hash=sha256:" in block for block in re.split(r"\n(?=[A-Za-z0-9])", text) if PIN.match(block))
    assert all(dev[name] == version for name, version in prod.items()), "prod.lock and dev.lock disagree"


def test_dev_lock_covers_the_sdk():
    """The SDK (sdk/, installed by `make setup`) is locked with the dev set: `make lock` reads its
    pyproject.toml too. It imports nothing from Django, and Django is no dependency of it."""
    sdk = tomllib.loads((ROOT / "sdk" / "pyproject.toml").read_text())["project"]
    assert _names(sdk["dependencies"]) <= set(_pins("dev.lock")), "run `make lock`: dev.lock misses an SDK dependency"
    assert not {"django", "djangorestframework"} & _names(sdk["dependencies"])


def test_the_environment_is_the_locked_set():
    """`make setup` installs dev.lock with --require-hashes: the suite runs on exactly what is locked."""
    dev = _pins("dev.lock")
    installed = {_norm(d.metadata["Name"]): d.version for d in metadata.distributions()}
    drift = {n: (v, installed.get(n)) for n, v in dev.items() if installed.get(n) != v}
    assert not drift, f"installed packages differ from requirements/dev.lock (run `make setup`): {drift}"


@pytest.fixture
def fake_pip_audit(tmp_path):
    """A `pip_audit` module answering with a given report, first on the audit script's path."""
    package = tmp_path / "pip_audit"
    package.mkdir()

    def answer(report: dict | None) -> dict:
        body = "import sys\nsys.exit('connection refused')\n" if report is None else (
            f"import json, sys\nprint(json.dumps({json.dumps(report)!s}))\n")
        (package / "__main__.py").write_text(body)
        (package / "__init__.py").write_text("")
        return {**os.environ, "PYTHONPATH": str(tmp_path)}

    return answer


def _audit(env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / ".ci" / "audit")], env=env, capture_output=True,
                          text=True, timeout=60)


def test_audit_fails_on_a_known_vulnerability(fake_pip_audit):
    env = fake_pip_audit({"dependencies": [
        {"name": "django", "version": "5.2.0", "vulns": [{"id": "PYSEC-0000-1", "fix_versions": ["5.2.1"]}]},
        {"name": "celery", "version": "5.5.0", "vulns": []}]})
    result = _audit(env)
    assert result.returncode == 1 and "django 5.2.0: PYSEC-0000-1 (fixed in 5.2.1)" in result.stdout


def test_audit_passes_a_clean_set(fake_pip_audit):
    result = _audit(fake_pip_audit({"dependencies": [{"name": "django", "version": "5.2.0", "vulns": []}]}))
    assert result.returncode == 0 and "1 locked packages audited, 0 known vulnerabilities" in result.stdout


def test_audit_says_when_nothing_could_be_audited(fake_pip_audit):
    env = fake_pip_audit(None)
    result = _audit(env)
    assert result.returncode == 0 and "NOT AUDITED" in result.stdout
    assert _audit({**env, "PLINTH_AUDIT_STRICT": "1"}).returncode == 1
