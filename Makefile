# Plinth developer tasks. `make run` for the local stack, `make test` for the full suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
PROFILE ?= embedded
PYTEST_ARGS ?=
export PORT

.PHONY: help setup system-deps run test test-chaos test-fast fuzz fuzz-bad-input lint lock audit sdk-docs sdk-bench insights-bench costs-bench load-test

help:
	@echo "make setup        venv + the locked dependencies (when the lock changed) + migrate"
	@echo "make lock         re-resolve requirements/*.lock after editing pyproject.toml"
	@echo "make audit        pip-audit of the locked set (known vulnerabilities)"
	@echo "make system-deps  apt-get install redis-server, postgresql, chromium, poppler-utils, nodejs/npm, prometheus, prometheus-alertmanager if missing"
	@echo "make run          the whole local stack (MLflow, worker+beat, web) on PORT=$(PORT)"
	@echo "make run PROFILE=prod  the production profile locally: PostgreSQL + Redis, check --deploy, gunicorn"
	@echo "                  (WEB_WORKERS=2), a Celery worker (WORKERS=2 processes), one locked beat, DEBUG off"
	@echo "make test         full suite on SQLite, then prod_smoke on PostgreSQL + Redis (SHARDS=N parallel runs)"
	@echo "make test-fast    unit tests only (no browser, worker or prod_smoke)"
	@echo "make test-chaos   known-flaky fault-injection tests (quarantined from make test)"
	@echo "make fuzz         long schemathesis run over the API (PLINTH_FUZZ_EXAMPLES=300, new seed each run)"
	@echo "make fuzz-bad-input the property-based bad-input tests with 20x the examples (SQLite + PostgreSQL)"
	@echo "make lint         ruff check"
	@echo "make sdk-docs     regenerate the SDK's reference pages (sdk/docs/reference.md, cli.md)"
	@echo "make sdk-bench    SDK/CLI benchmark: import times, listing throughput (SDK_BENCH_ENTITIES=250000)"
	@echo "make insights-bench usage analytics benchmark: 10M events, rollups, query p95s (INSIGHTS_BENCH_EVENTS)"
	@echo "make load-test    locust's mix against the production profile at 250k entities, in steps, then a"
	@echo "                  PostgreSQL restart (LOADTEST_STEPS, LOADTEST_STEP_SECONDS, LOADTEST_ENTITIES; kept in var/)"
	@echo "make costs-bench  FOCUS import benchmark: 10M rows, rows/s, RSS, cost page p95s (COSTS_BENCH_ROWS)"

$(PY):
	$(PYTHON) -m venv $(VENV)

# Install exactly the locked, hash-checked set (requirements/dev.lock, from `make lock`), then the
# project itself without touching it; again only when the lock or pyproject.toml changed. The SDK
# (sdk/, its own package: plinth-sdk and the `plinth` command) goes in the same way: its dependencies
# are in dev.lock (`make lock` reads sdk/pyproject.toml too).
LOCK := requirements/dev.lock
$(STAMP): pyproject.toml sdk/pyproject.toml $(LOCK) | $(PY)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip install -q --no-deps --no-build-isolation -e ./sdk
	$(PY) -m pip check
	@touch $@

# Browser-side test tools (axe-core) from the npm registry, exactly as locked in tests/e2e/js/package-lock.json,
# into tests/e2e/js/node_modules/ (git-ignored); again only when the lock changed. Skipped with a note
# when npm is missing (`make system-deps` installs it); the accessibility tests then say what to run.
JS_DIR := tests/e2e/js
AXE := $(JS_DIR)/node_modules/.installed-stamp
$(AXE): $(JS_DIR)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  npm ci --prefix $(JS_DIR) --ignore-scripts --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "setup: npm not found; run 'make system-deps' for the accessibility checks (axe-core)"; fi

# Re-resolve the locks after changing dependencies in pyproject.toml (needs the package index).
LOCK_FLAGS := --quiet --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock: | $(PY)
	$(PY) -m piptools compile $(LOCK_FLAGS) --extra dev --extra feast --extra s3 -o requirements/dev.lock pyproject.toml sdk/pyproject.toml requirements/build.in
	$(PY) -m piptools compile $(LOCK_FLAGS) --extra feast --extra s3 -c requirements/dev.lock -o requirements/prod.lock pyproject.toml requirements/build.in

# Known vulnerabilities in the locked set (pip-audit; docs/security.md#supply-chain).
audit: $(STAMP)
	$(PY) .ci/audit

setup: $(STAMP) $(AXE)
	@mkdir -p var
	$(PY) manage.py migrate --noinput

system-deps:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v pdfinfo >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	dpkg-query -W -f='$${Status}' fonts-dejavu-core 2>/dev/null | grep -q 'ok installed' \
	  || missing="$$missing fonts-dejavu-core"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing nodejs npm"; \
	{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "system-deps: installing$$missing"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

run: setup
	$(PY) manage.py devstack --port $(PORT) --profile $(PROFILE)

# SHARDS parallel runs (tests/shards.py), each with services of its own: every shard runs its share of
# the SQLite suite, the last one then the PostgreSQL prod_smoke run; non-zero if any failed. Two by
# default: 17–24 min on a fresh clone instead of ~46–50 for one run (`make test SHARDS=1`) on this 2-core
# machine (README, "Shards").
# Hypothesis' `ci` profile (tests/conftest.py; docs/security.md) whatever the shell exports.
SHARDS ?= 2
test: system-deps setup
	HYPOTHESIS_PROFILE=ci $(PY) -m tests.shards $(SHARDS) -- \
	  $(PY) -m pytest -m "not prod_smoke and not chaos" $(PYTEST_ARGS) \
	  ++ prod: $(PY) -m pytest -m prod_smoke $(PYTEST_ARGS)

# Exit 5 is pytest's "no tests collected": nothing is quarantined at the moment.
test-chaos: system-deps setup
	$(PY) -m tests.services -- $(PY) -m pytest -m chaos $(PYTEST_ARGS); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]

# The API fuzzed from its schema for longer than `make test` does (tests/api/test_fuzz.py), on SQLite and
# then PostgreSQL; a new seed each run unless PLINTH_FUZZ_SEED is given (the run prints it).
FUZZ_EXAMPLES ?= 300
fuzz: system-deps setup
	export PLINTH_FUZZ_EXAMPLES=$${PLINTH_FUZZ_EXAMPLES:-$(FUZZ_EXAMPLES)} PLINTH_FUZZ_SEED=$${PLINTH_FUZZ_SEED:-$$RANDOM$$RANDOM}; \
	$(PY) -m tests.services -- \
	  $(PY) -m pytest tests/api/test_fuzz.py -m "not prod_smoke" -s -o timeout=0 $(PYTEST_ARGS) \
	  ++ prod: $(PY) -m pytest tests/api/test_fuzz.py -m prod_smoke -s -o timeout=0 $(PYTEST_ARGS)

# The bad-input properties under the `fuzz` profile: a longer hunt, not part of `make test`.
FUZZ_TESTS := $(wildcard tests/*/test_bad_input_properties.py)
fuzz-bad-input: system-deps setup
	HYPOTHESIS_PROFILE=fuzz $(PY) -m tests.services --services redis,postgres -- \
	  $(PY) -m pytest -m "not prod_smoke" $(FUZZ_TESTS) $(PYTEST_ARGS) \
	  ++ prod: $(PY) -m pytest -m prod_smoke $(FUZZ_TESTS) $(PYTEST_ARGS)

test-fast: setup
	$(PY) -m pytest -m "not browser and not worker and not prod_smoke" $(PYTEST_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

# The SDK's generated docs (sdk/docs/reference.md from docstrings, sdk/docs/cli.md from the CLI).
sdk-docs: $(STAMP)
	$(PY) -m plinth_sdk._docgen sdk/docs

# SDK/CLI benchmark (sdk/bench.py): start-up imports of `plinth --help` / `plinth catalog get`, and
# listing throughput with memory, against a scratch portal of SDK_BENCH_ENTITIES entities. One JSON line.
SDK_BENCH_ENTITIES ?= 250000
sdk-bench: $(STAMP)
	$(PY) sdk/bench.py --entities $(SDK_BENCH_ENTITIES)

# Usage analytics benchmark (portal/insights/bench.py): INSIGHTS_BENCH_EVENTS raw events (default 10M) across
# 5,000 users and 200 teams, rolled up, then selector/API p95s, capture overhead, one day's rollup. One JSON
# line. A scratch database under a temporary PLINTH_VAR_DIR (the SQLite profile; DATABASE_URL for PostgreSQL).
INSIGHTS_BENCH_EVENTS ?= 10000000
insights-bench: $(STAMP)
	@scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	PLINTH_VAR_DIR=$$scratch $(PY) manage.py migrate --noinput -v 0 && \
	PLINTH_VAR_DIR=$$scratch $(PY) manage.py insights bench --keep --events $(INSIGHTS_BENCH_EVENTS)

# FinOps benchmark (portal/costs/bench.py): COSTS_BENCH_ROWS generated FOCUS rows (default 10M) imported,
# allocated, then the cost pages' query p95s. One JSON line. A scratch database under a temporary PLINTH_VAR_DIR.
COSTS_BENCH_ROWS ?= 10000000
costs-bench: $(STAMP)
	@scratch=$$(mktemp -d); trap 'rm -rf "$$scratch"' EXIT; \
	PLINTH_VAR_DIR=$$scratch $(PY) manage.py migrate --noinput -v 0 && \
	PLINTH_VAR_DIR=$$scratch $(PY) manage.py costs bench --keep --rows $(COSTS_BENCH_ROWS)

# The load test (docs/deployment.md#load-test): PostgreSQL, Redis, gunicorn and a Celery worker with the
# production settings, the 250k catalog seeded once and kept in var/loadtest, locust in steps of more
# people, then PostgreSQL restarted during a step. One JSON line; the report in var/loadtest/report.json.
load-test: $(STAMP)
	$(PY) manage.py loadtest --keep-going --restart-database
