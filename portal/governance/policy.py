"""Policy-as-code: Rego gates evaluated in-process with regopy.

Each gate is `policies/<gate>.rego`, package `plinth.gates.<gate>`, defining `title` and
`result := results(input)`: a list of `{"rule", "pass", "message"}` (and `"severity": "warn"` for a
rule whose failure never blocks). `lib.rego` holds shared helpers.
All healthy gates are compiled once into one regopy bundle (rebuilt when any file's hash changes), so
evaluating a request is one `set_input` and one query.

Fail closed: a gate whose file is missing, does not compile, returns nothing or something malformed
fails with a clear error and blocks, whatever its configured enforcement.

regopy 1.5.2 limits worked around here (see docs/governance.md): `with … as` crashes the process, so
sources using it are refused before they reach the interpreter; `sprintf` quotes strings produced by
other builtins, so policies only format literals and input values.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import conf

GATE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# `with input as …` / `with data.x as …` aborts regopy 1.5.2 (the whole process): refuse it up front.
WITH_AS = re.compile(r"\bwith\s+(input|data)\b[^\n]*\bas\b")
TEST_RULE = re.compile(r"^(test_[A-Za-z0-9_]+)\s+if\b", re.MULTILINE)
PACKAGE = re.compile(r"^package\s+([A-Za-z0-9_.]+)", re.MULTILINE)
LIB = "lib"


class PolicyError(Exception):
    """A policy that cannot be used; the message says which file and why."""


@dataclass
class GateOutcome:
    gate: str
    title: str
    policy_file: str
    policy_hash: str
    enforcement: str
    passed: bool
    rules: list[dict] = field(default_factory=list)
    error: str = ""
    duration_ms: float = 0.0

    @property
    def blocking(self) -> bool:
        return blocks(passed=self.passed, enforcement=self.enforcement, rules=self.rules, error=self.error)


SEVERITIES = ("block", "warn")


def blocks(*, passed: bool, enforcement: str, rules: list[dict], error: str = "") -> bool:
    """A failed gate blocks under `block` enforcement unless every failed rule is a warning (severity
    `warn`, e.g. downstream_impact's "something depends on it"). An error always blocks (fail closed)."""
    if passed:
        return False
    if error:
        return True
    return enforcement == "block" and any(
        not r.get("pass") and r.get("severity", "block") != "warn" for r in rules
    )


@dataclass
class _Source:
    name: str
    path: Path
    text: str
    hash: str
    error: str = ""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def policy_dir() -> Path:
    return Path(conf.get("POLICY_DIR"))


def _read(path: Path) -> _Source:
    name = path.stem
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return _Source(name, path, "", "", f"{path.name}: unreadable ({exc})")
    source = _Source(name, path, text, _sha256(text))
    code = re.sub(r"#[^\n]*", "", text)  # comments may mention it
    if WITH_AS.search(code):
        source.error = (
            f"{path.name}: `with … as` is not supported by the in-process evaluator "
            "(regopy 1.5.2 aborts); call a function with the input as an argument instead"
        )
    return source


def read_source(path: Path) -> _Source:
    """A Rego file read the way every policy is: its hash, and the refusal of `with … as` (other apps'
    rule files, e.g. scorecard checks, go through the same door)."""
    return _read(path)


def compile_error(exc: Exception, file: str) -> str:
    """The parser's message, shortened, naming the file."""
    first = str(exc).strip().splitlines()[:6]
    return f"{file}: does not compile: {' '.join(line.strip() for line in first)}"[:1000]


def build_bundle(modules: list[tuple[str, str]], entrypoints: list[str]) -> Any:
    """Compile `(file name, source)` modules into one regopy bundle for `entrypoints`. Raises PolicyError
    naming the file the parser stopped at (or the entrypoints)."""
    from regopy import Interpreter

    interp = Interpreter()
    for name, text in modules:
        try:
            interp.add_module(name, text)
        except Exception as exc:
            raise PolicyError(compile_error(exc, name)) from exc
    try:
        bundle = interp.build(None, entrypoints)
    except Exception as exc:
        raise PolicyError(compile_error(exc, ", ".join(entrypoints))) from exc
    if not bundle.ok():
        raise PolicyError(f"{', '.join(entrypoints)}: does not compile")
    return bundle


def query_bundle(runner: Any, bundle: Any, entrypoint: str, payload: Any) -> Any:
    """One query of a compiled bundle with `payload` as input: the first expression's value ({} when the
    entrypoint is undefined). The caller serialises access to `runner` (an Interpreter)."""
    from regopy.rego_shared import rego_bundle_query_entrypoint, rego_output_string

    runner.set_input(payload)
    # Output's own parser fails on some valid results; read the raw JSON text instead.
    raw = rego_output_string(rego_bundle_query_entrypoint(runner._impl, bundle._impl, entrypoint))
    try:
        data = json.loads(raw) if raw and raw.strip() != "undefined" else {}
    except ValueError as exc:
        # regopy writes a string a rule computed, given to sprintf, quoted and unescaped (docs/governance.md).
        raise PolicyError(f"the policy engine's answer is not JSON ({exc}): does a message sprintf a string "
                          f"another rule computed? Format only literals, numbers and input values") from exc
    values = data.get("expressions") or [{}]
    return values[0] if isinstance(values[0], dict) else {}


def _compile_check(lib: _Source, source: _Source) -> str:
    """Compile one gate with the library in a scratch interpreter; '' when it is fine."""
    from regopy import Interpreter

    if source.error:
        return source.error
    package = PACKAGE.search(source.text)
    if not package or package.group(1) != f"plinth.gates.{source.name}":
        return f"{source.path.name}: package must be plinth.gates.{source.name}"
    try:
        interp = Interpreter()
        interp.add_module(f"{LIB}.rego", lib.text)
        interp.add_module(source.path.name, source.text)
        bundle = interp.build(
            None, [f"plinth/gates/{source.name}/result", f"plinth/gates/{source.name}/title"]
        )
        if not bundle.ok():
            return f"{source.path.name}: does not compile"
    except Exception as exc:  # regopy raises RegoError with the parser's message
        first = str(exc).strip().splitlines()[:6]
        return f"{source.path.name}: does not compile: {' '.join(line.strip() for line in first)}"[:1000]
    return ""


class PolicySet:
    """All gate sources of one policy folder, compiled into one bundle. Cached per process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.lib = (
            _read(folder / f"{LIB}.rego")
            if (folder / f"{LIB}.rego").exists()
            else _Source(LIB, folder / f"{LIB}.rego", "", "", f"{LIB}.rego is missing")
        )
        self.sources: dict[str, _Source] = {}
        for path in sorted(folder.glob("*.rego")):
            if path.stem == LIB or path.stem.endswith("_test") or not GATE_NAME.match(path.stem):
                continue
            source = _read(path)
            if _is_rule_module(source.text):
                continue  # a rule other apps query (rule_value), not a gate
            self.sources[path.stem] = source
        self.fingerprint = _sha256(self.lib.hash + "".join(f"{n}:{s.hash}" for n, s in self.sources.items()))
        self.bundle = None
        self.healthy: list[str] = []
        self._lock = threading.Lock()
        self._runner = None
        self._compile()

    def _compile(self) -> None:
        from regopy import Interpreter

        for source in self.sources.values():
            source.error = self.lib.error or _compile_check(self.lib, source)
        healthy = [name for name, s in self.sources.items() if not s.error]
        if not healthy:
            return
        interp = Interpreter()
        interp.add_module(f"{LIB}.rego", self.lib.text)
        for name in healthy:
            interp.add_module(self.sources[name].path.name, self.sources[name].text)
        fields = ", ".join(
            f'"{n}": {{"title": data.plinth.gates.{n}.title, "result": data.plinth.gates.{n}.result}}'
            for n in healthy
        )
        interp.add_module("plinth_run.rego", f"package plinth.run\n\nimport rego.v1\n\nall := {{{fields}}}\n")
        try:
            self.bundle = interp.build(None, ["plinth/run/all"])
        except Exception as exc:
            for name in healthy:
                self.sources[name].error = f"policy bundle does not compile: {str(exc)[:500]}"
            return
        self.healthy = healthy
        self._runner = Interpreter()

    def gate_hash(self, gate: str) -> str:
        """The hash recorded with results: the gate's file and the shared library."""
        source = self.sources.get(gate)
        return _sha256(f"{source.hash}:{self.lib.hash}") if source and source.hash else ""

    def _query(self, payload: dict) -> dict:
        with self._lock:
            return query_bundle(self._runner, self.bundle, "plinth/run/all", payload)

    def evaluate(self, gates: dict[str, str], payload: dict) -> tuple[list[GateOutcome], float]:
        """Evaluate the named gates (name → block|warn). Returns the outcomes and the time spent (ms)."""
        started = time.perf_counter()
        results: dict[str, Any] = {}
        query_error = ""
        if self.bundle is not None and any(g in self.healthy for g in gates):
            try:
                results = self._query(payload)
            except Exception as exc:
                query_error = f"evaluation failed: {str(exc)[:500]}"
        elapsed = (time.perf_counter() - started) * 1000
        outcomes = []
        for gate, enforcement in gates.items():
            source = self.sources.get(gate)
            outcome = GateOutcome(
                gate=gate,
                title=gate.replace("_", " ").capitalize(),
                policy_file=f"{gate}.rego",
                policy_hash=self.gate_hash(gate),
                enforcement=enforcement,
                passed=False,
                duration_ms=elapsed / max(1, len(gates)),
            )
            if source is None:
                outcome.error = f"{gate}.rego does not exist in {self.folder.name}/"
            elif source.error:
                outcome.error = source.error
            elif query_error:
                outcome.error = query_error
            else:
                outcome.title, outcome.rules, outcome.error = _read_result(gate, results.get(gate))
                outcome.passed = not outcome.error and all(r["pass"] for r in outcome.rules)
            if outcome.error:
                outcome.enforcement = "block"  # fail closed whatever the configured enforcement
            outcomes.append(outcome)
        return outcomes, elapsed


def _read_result(gate: str, value: Any) -> tuple[str, list[dict], str]:
    if not isinstance(value, dict):
        return gate, [], f"{gate}.rego produced no result for this input"
    title = value.get("title") if isinstance(value.get("title"), str) else gate
    rules = value.get("result")
    if not isinstance(rules, list) or not rules:
        return title, [], f"{gate}.rego produced no rule results for this input"
    clean = []
    for rule in rules:
        if not (
            isinstance(rule, dict)
            and isinstance(rule.get("pass"), bool)
            and isinstance(rule.get("rule"), str)
        ):
            return title, [], f"{gate}.rego returned a malformed rule result: {str(rule)[:200]}"
        severity = rule.get("severity", "block")
        if severity not in SEVERITIES:  # a typo must not turn a blocking rule into a warning
            return title, [], f"{gate}.rego returned a rule with an unknown severity: {str(rule)[:200]}"
        entry = {"rule": rule["rule"], "pass": rule["pass"], "message": str(rule.get("message", ""))[:1000]}
        if severity == "warn":
            entry["severity"] = "warn"
        clean.append(entry)
    return title, clean, ""


_cache: dict[str, PolicySet] = {}
_cache_lock = threading.Lock()


def current() -> PolicySet:
    """The policy set of the configured folder, recompiled when a file changed."""
    folder = policy_dir()
    lib_path = folder / f"{LIB}.rego"
    lib_hash = _sha256(lib_path.read_text(encoding="utf-8")) if lib_path.exists() else ""
    parts = []
    for path in sorted(folder.glob("*.rego")):
        if path.stem == LIB or path.stem.endswith("_test") or not GATE_NAME.match(path.stem):
            continue
        try:
            parts.append(f"{path.stem}:{_sha256(path.read_text(encoding='utf-8'))}")
        except (OSError, UnicodeDecodeError):
            parts.append(f"{path.stem}:unreadable")
    key = f"{folder}|{_sha256(lib_hash + ''.join(parts))}"
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            _cache.clear()
            found = _cache[key] = PolicySet(folder)
        return found


# -- rule modules: policy decisions other than gates ------------------------------------------------
# `policies/<name>.rego` with `package plinth.rules.<name>` is not a gate: an app asks it one question
# (e.g. the deployments app: is this environment governed?) through `rule_value`. Same folder, same
# `manage.py policy test`, same setting (PLINTH_GOVERNANCE_POLICY_DIR) as the gates.
RULES_PACKAGE = "plinth.rules."


def _is_rule_module(text: str) -> bool:
    package = PACKAGE.search(text)
    return bool(package and package.group(1).startswith(RULES_PACKAGE))


_rule_cache: dict[str, Any] = {}
_rule_lock = threading.Lock()


def rule_value(module: str, rule: str, payload: dict) -> Any:
    """The value of `data.plinth.rules.<module>.<rule>` for `payload` as input. Raises PolicyError
    (naming the file) when the module is missing, unreadable, does not compile, or leaves the rule
    undefined: callers fail closed."""
    if not GATE_NAME.match(module) or not re.match(r"^[a-z_][a-z0-9_]{0,62}$", rule):
        raise PolicyError(f"{module}.{rule}: not a valid rule name")
    folder = policy_dir()
    path = folder / f"{module}.rego"
    source = _read(path) if path.is_file() else None
    if source is None or source.error:
        raise PolicyError(source.error if source else f"{path.name} does not exist in {folder.name}/")
    if not _is_rule_module(source.text) or PACKAGE.search(source.text).group(1) != f"{RULES_PACKAGE}{module}":
        raise PolicyError(f"{path.name}: package must be {RULES_PACKAGE}{module}")
    lib_path = folder / f"{LIB}.rego"
    lib_text = lib_path.read_text(encoding="utf-8") if lib_path.is_file() else ""
    key = f"{path}|{source.hash}|{_sha256(lib_text)}"
    from regopy import Interpreter

    with _rule_lock:
        interp = _rule_cache.get(key)
        if interp is None:
            try:
                interp = Interpreter()
                if lib_text:
                    interp.add_module(f"{LIB}.rego", lib_text)
                interp.add_module(path.name, source.text)
            except Exception as exc:
                raise PolicyError(f"{path.name}: does not compile: {str(exc)[:300]}") from exc
            _rule_cache.clear()
            _rule_cache[key] = interp
        try:
            interp.set_input(payload)
            raw = str(interp.query(f"x = data.{RULES_PACKAGE}{module}.{rule}"))
        except Exception as exc:
            raise PolicyError(f"{path.name}: evaluation failed: {str(exc)[:300]}") from exc
    try:
        results = json.loads(raw)
        bindings = results.get("result") if isinstance(results, dict) else None
        if bindings is None:  # regopy's output: {"bindings": {"x": ...}} or a list of such
            bindings = results
        value = _binding(bindings)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise PolicyError(f"{path.name}: {rule} is undefined for this input") from exc
    return value


def rule_modules() -> dict[str, str]:
    """Every rule module of the policy folder and why it cannot be used ('' when it compiles)."""
    from regopy import Interpreter

    folder = policy_dir()
    lib_path = folder / f"{LIB}.rego"
    lib_text = lib_path.read_text(encoding="utf-8") if lib_path.is_file() else ""
    out = {}
    for path in sorted(folder.glob("*.rego")):
        source = _read(path)
        if path.stem.endswith("_test") or not _is_rule_module(source.text):
            continue
        error = source.error
        if not error:
            try:
                interp = Interpreter()
                if lib_text:
                    interp.add_module(f"{LIB}.rego", lib_text)
                interp.add_module(path.name, source.text)
                interp.set_input({})
                interp.query(f"x = data.{PACKAGE.search(source.text).group(1)}")
            except Exception as exc:
                error = f"{path.name}: does not compile: {' '.join(str(exc).split())[:300]}"
        out[path.stem] = error
    return out


def _binding(results: Any) -> Any:
    if isinstance(results, list):
        return _binding(results[0])
    if isinstance(results, dict) and "bindings" in results:
        return results["bindings"]["x"]
    if isinstance(results, dict) and "x" in results:
        return results["x"]
    raise KeyError("x")


def combined_hash(outcomes: list[GateOutcome]) -> str:
    """One hash over every gate's hash: recorded with the request, each decision and audit event."""
    return _sha256("\n".join(sorted(f"{o.gate}:{o.policy_hash}" for o in outcomes)))


def policy_source(gate: str) -> tuple[str, str] | None:
    """(file name, text) of a gate, for reviewers to read on the request page."""
    if not GATE_NAME.match(gate):
        return None
    path = policy_dir() / f"{gate}.rego"
    if not path.is_file():
        return None
    return path.name, path.read_text(encoding="utf-8", errors="replace")


# -- `manage.py policy test` -------------------------------------------------------------------


@dataclass
class TestOutcome:
    file: str
    name: str
    passed: bool
    message: str = ""


def run_tests(folder: Path | None = None) -> list[TestOutcome]:
    """Run every `test_*` rule of every `*_test.rego` with all gates loaded; each must be true."""
    from regopy import Interpreter

    folder = folder or policy_dir()
    modules = [p for p in sorted(folder.glob("*.rego")) if not p.stem.endswith("_test")]
    outcomes: list[TestOutcome] = []
    for test_path in sorted(folder.glob("*_test.rego")):
        text = test_path.read_text(encoding="utf-8")
        names = TEST_RULE.findall(text)
        package = PACKAGE.search(text)
        problems = [s.error for s in map(_read, [*modules, test_path]) if s.error]
        if problems or not package:
            outcomes.append(
                TestOutcome(test_path.name, "(load)", False, problems[0] if problems else "no package")
            )
            continue
        try:
            interp = Interpreter()
            for path in modules:
                interp.add_module(path.name, path.read_text(encoding="utf-8"))
            interp.add_module(test_path.name, text)
            interp.set_input({})
        except Exception as exc:
            outcomes.append(
                TestOutcome(test_path.name, "(load)", False, f"does not compile: {str(exc)[:300]}")
            )
            continue
        for name in names:
            try:
                raw = str(interp.query(f"x = data.{package.group(1)}.{name}"))
                ok = '"x":true' in raw.replace(" ", "")
                outcomes.append(TestOutcome(test_path.name, name, ok, "" if ok else f"result: {raw[:200]}"))
            except Exception as exc:
                outcomes.append(TestOutcome(test_path.name, name, False, f"error: {str(exc)[:300]}"))
        if not names:
            outcomes.append(TestOutcome(test_path.name, "(none)", False, "no test_* rules found"))
    return outcomes
