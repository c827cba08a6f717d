"""Evaluating scorecard checks in batches with the governance policy engine (regopy, fail closed).

Each healthy check rule of a scorecard is compiled, with a generated runner module, into one bundle.
A query's input holds, per check, a list of fact projections (only the facts the check `reads`); Rego
comprehensions answer, per check, the indices whose `pass(facts)` is true and those whose is false.
An index in neither set (the rule is undefined for it, or not a boolean) fails closed with a reason.

Speed: a check sees nothing but its projection, so identical projections have identical results. They
are evaluated once per compiled scorecard (memoised) and the engine sends regopy only projections not
seen before, in chunks (regopy's time grows faster than linearly with the input's length).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from portal.governance import policy

from . import conf, definitions
from .definitions import Scorecard

MEMO_LIMIT = 500_000
ENTRYPOINT = "plinth/scorecard/all"


@dataclass(frozen=True)
class Outcome:
    passed: bool
    error: str = ""


class CompiledScorecard:
    def __init__(self, card: Scorecard) -> None:
        self.card = card
        self.errors: dict[str, str] = {}  # check id → why it cannot be evaluated
        self.sources: dict[str, str] = {}  # rule file → its text (shown on the check's explanation)
        self.healthy: list[definitions.Check] = []
        self.bundle = None
        self._runner = None
        self._lock = threading.Lock()
        self._memo: dict[tuple[int, str], Outcome] = {}
        self._compile()

    def _rule(self, check: definitions.Check) -> tuple[str, str]:
        """(source text, error) of a check's rule file."""
        path = definitions.folder() / "checks" / check.rule
        if not path.is_file():
            return "", f"checks/{check.rule} does not exist"
        source = policy.read_source(path)
        if source.error:
            return source.text, f"checks/{source.error}"
        package = policy.PACKAGE.search(source.text)
        if not package or package.group(1) != check.package:
            return source.text, f"checks/{check.rule}: package must be {check.package}"
        return source.text, ""

    def _compile(self) -> None:
        from regopy import Interpreter

        if self.card.error:
            return
        candidates = []
        for check in self.card.checks:
            if check.manual:
                continue
            text, error = self._rule(check)
            self.sources[check.rule] = text
            if not error:
                try:
                    policy.build_bundle([(check.rule, text), ("runner.rego", _runner_module([check]))], [ENTRYPOINT])
                except policy.PolicyError as exc:
                    error = f"checks/{exc}"
            if error:
                self.errors[check.id] = error
            else:
                candidates.append(check)
        if not candidates:
            return
        modules = {c.rule: self.sources[c.rule] for c in candidates}
        try:
            self.bundle = policy.build_bundle([*modules.items(), ("runner.rego", _runner_module(candidates))],
                                              [ENTRYPOINT])
        except policy.PolicyError as exc:
            for check in candidates:
                self.errors[check.id] = f"the scorecard's rules do not compile together: {exc}"
            return
        self.healthy = candidates
        self._runner = Interpreter()

    def evaluate(self, facts: list[dict]) -> list[dict[str, Outcome]]:
        """For each entity's facts, every rule check's outcome (manual checks are the service's)."""
        out: list[dict[str, Outcome]] = [{} for _ in facts]
        for check_id, error in self.errors.items():
            failed = Outcome(False, error)
            for row in out:
                row[check_id] = failed
        if not self.healthy:
            return out
        keys_by_reads: dict[tuple[str, ...], list[str]] = {}
        for reads in {c.reads for c in self.healthy}:
            keys_by_reads[reads] = _keys(facts, reads)
        pending: dict[int, dict[str, dict]] = {}
        with self._lock:
            if len(self._memo) > MEMO_LIMIT:
                self._memo.clear()
            for i, check in enumerate(self.healthy):
                keys = keys_by_reads[check.reads]
                todo = pending.setdefault(i, {})
                for n, key in enumerate(keys):
                    if (i, key) not in self._memo and key not in todo:
                        todo[key] = project(facts[n], check.reads)
            fresh = self._query_all({i: todo for i, todo in pending.items() if todo})
            for i, check in enumerate(self.healthy):
                keys = keys_by_reads[check.reads]
                for n, key in enumerate(keys):
                    outcome = self._memo.get((i, key)) or fresh.get((i, key))
                    out[n][check.id] = outcome or Outcome(False, "evaluation failed")
        return out

    def _query_all(self, pending: dict[int, dict[str, dict]]) -> dict[tuple[int, str], Outcome]:
        """Send the projections not seen before, a chunk per check per query; memoise what Rego decided."""
        chunk = max(1, int(conf.get("REGO_CHUNK")))
        queues = {i: list(todo.items()) for i, todo in pending.items()}
        transient: dict[tuple[int, str], Outcome] = {}
        while queues:
            payload, sent = {}, {}
            for i in list(queues):
                part, queues[i] = queues[i][:chunk], queues[i][chunk:]
                if not queues[i]:
                    del queues[i]
                payload[f"c{i}"] = [proj for _, proj in part]
                sent[i] = [key for key, _ in part]
            try:
                value = policy.query_bundle(self._runner, self.bundle, ENTRYPOINT, payload)
            except Exception as exc:
                error = f"evaluation failed: {' '.join(str(exc).split())[:300]}"
                for i, keys in sent.items():
                    for key in keys:
                        transient[(i, key)] = Outcome(False, error)
                continue
            for i, keys in sent.items():
                answer = value.get(f"c{i}") if isinstance(value, dict) else None
                passed = set(answer.get("pass") or []) if isinstance(answer, dict) else set()
                failed = set(answer.get("fail") or []) if isinstance(answer, dict) else set()
                rule = self.healthy[i].rule
                for n, key in enumerate(keys):
                    if n in passed:
                        self._memo[(i, key)] = Outcome(True)
                    elif n in failed:
                        self._memo[(i, key)] = Outcome(False)
                    else:
                        self._memo[(i, key)] = Outcome(
                            False, f"checks/{rule}: pass(facts) returned nothing (or not a boolean) for these facts")
        return transient


def _keys(facts: list[dict], reads: tuple[str, ...]) -> list[str]:
    """Per entity, a string equal for equal projections (the memo's key)."""
    paths = [r.partition(".") for r in reads]
    if len(paths) == 1:
        top, _, sub = paths[0]
        if not sub:
            return [repr(f.get(top)) for f in facts]
        return [repr(v.get(sub) if isinstance(v := f.get(top), dict) else None) for f in facts]
    out = []
    for f in facts:
        values = []
        for top, _, sub in paths:
            v = f.get(top)
            values.append((v.get(sub) if isinstance(v, dict) else None) if sub else v)
        out.append(repr(values))
    return out


def project(facts: dict, reads: tuple[str, ...]) -> dict:
    """The part of an entity's facts a check sees: whole facts (`owner`) or one field of one (`mlflow.versions`)."""
    out: dict = {}
    for read in reads:
        top, _, sub = read.partition(".")
        if not sub:
            out[top] = facts.get(top)
        else:
            value = facts.get(top)
            if isinstance(value, dict):
                out.setdefault(top, {})[sub] = value.get(sub)
            else:
                out[top] = None  # an absent fact (slo, cost…) stays absent: the rule fails closed
    return out


def _runner_module(checks: list[definitions.Check]) -> str:
    """The generated module: per check, the indices of its projections that pass and those that fail."""
    lines = ["package plinth.scorecard", "", "import rego.v1", ""]
    fields = []
    for i, check in enumerate(checks):
        ref = f"data.{check.package}.pass"
        for outcome in ("true", "false"):
            lines += [f"c{i}_{outcome} := {{j |", f"\tf := input.c{i}[j]", f"\t{ref}(f) == {outcome}", "}", ""]
        fields.append(f'"c{i}": {{"pass": c{i}_true, "fail": c{i}_false}}')
    lines.append(f"all := {{{', '.join(fields)}}}")
    return "\n".join(lines) + "\n"


_cache: dict[str, CompiledScorecard] = {}
_cache_lock = threading.Lock()


def compiled(card: Scorecard) -> CompiledScorecard:
    """The compiled scorecard, cached per process until its file or one of its rule files changes (by
    content hash, as the governance policy set is)."""
    parts = [card.name, card.hash]
    folder = definitions.folder() / "checks"
    for rule in sorted({c.rule for c in card.checks if c.rule}):
        try:
            parts.append(f"{rule}:{hashlib.sha256((folder / rule).read_bytes()).hexdigest()}")
        except OSError:
            parts.append(f"{rule}:missing")
    key = "|".join(parts)
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            for old in [k for k in _cache if k.startswith(f"{card.name}|")]:
                del _cache[old]
            found = _cache[key] = CompiledScorecard(card)
        return found
