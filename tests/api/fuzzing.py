"""Runs schemathesis over the API of a live server and sums up what it found.

The run is schemathesis' engine, the one behind `schemathesis run`: every phase (the schema's examples,
the coverage phase's boundary and negative cases, random positive and negative fuzzing, and stateful
sequences along the schema's links), all against `/api/schema/` as served. Its pytest integration
(`schemathesis.pytest.from_fixture`) would be the documented way in, but it renames pytest nodes through
an attribute pytest 9.2 no longer has (`_nodeid`), so the engine is driven directly and its events are
summed up here."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import schemathesis
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)


def load_schema(*, base_url: str, token: str, examples: int, seed: int, world) -> schemathesis.schemas.BaseSchema:
    """The live schema, configured for a run with `examples` random cases per operation and phase
    (fuzzing, and the stateful phase's scenarios), its path parameters drawn half from `world`."""
    headers = {
        "Authorization": f"Bearer {token}",
        # Keep-alive requests to Django's test server wait ~40 ms each on delayed ACKs; a connection per
        # request is three times faster here.
        "Connection": "close",
    }
    config = SchemathesisConfig.from_dict({
        "seed": seed,
        "headers": headers,
        "base-url": base_url,
        # Same seed, same cases: no example database, no cache of what earlier runs learned.
        "cache": {"enabled": False},
        "generation": {"mode": "all", "max-examples": examples, "database": "none"},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            # A scenario is several requests: fewer of them, each at most a few steps long.
            "stateful": {"enabled": True, "max-steps": 6,
                         "generation": {"mode": "all", "max-examples": max(examples // 3, 2), "database": "none"}},
        },
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
    })
    schema = schemathesis.openapi.from_url(f"{base_url}/api/schema/", config=config, headers=headers)

    @schema.hook
    def flatmap_path_parameters(ctx, path_parameters):
        # Random ids and names almost never hit an object; half the cases name one that exists. Drawn
        # late, so that objects re-created during the run are the ones named.
        path = ctx.operation.path

        def existing(i: int) -> dict:
            known = world.path_values(path)
            return known[i % len(known)] if known else path_parameters

        return st.one_of(st.just(path_parameters), st.integers(min_value=0).map(existing))

    @schema.hook
    def after_call(ctx, case, response):
        world.after_call(case.method.upper(), case.operation.path, response.status_code)

    return schema


@dataclass
class Report:
    statistic: Statistic = field(default_factory=Statistic)
    cases_by_phase: Counter = field(default_factory=Counter)
    operations: set[str] = field(default_factory=set)
    statuses: dict[str, Counter] = field(default_factory=dict)  # operation -> status code -> responses
    errors: list[str] = field(default_factory=list)
    stateful_links: int = 0
    seconds: float = 0.0

    @property
    def total_cases(self) -> int:
        return self.statistic.total_cases

    @property
    def failed(self) -> bool:
        return bool(self.statistic.failures or self.errors)

    def failure_text(self, limit: int = 40) -> str:
        lines = []
        for label, groups in sorted(self.statistic.failures.items()):
            for group in groups.values():
                lines += [f"- {label}: {f.title}\n    {f.message.strip()[:600]}" for f in group.failures]
                if group.code_sample:
                    lines.append(f"    reproduce: {group.code_sample[:600]}")
        lines += [f"- error: {e}" for e in self.errors]
        return "\n".join(lines[: limit * 3])

    def status_table(self) -> str:
        return "\n".join(f"{label}: " + ", ".join(f"{code}x{n}" for code, n in sorted(counts.items()))
                         for label, counts in sorted(self.statuses.items()))

    def summary(self) -> str:
        phases = ", ".join(f"{p}: {n}" for p, n in sorted(self.cases_by_phase.items()))
        return (f"{len(self.operations)} operations, {self.total_cases} test cases ({phases}), "
                f"{self.stateful_links} stateful links, {self.statistic.total_failures} unique failures, "
                f"{len(self.errors)} errors, {self.seconds:.0f} s")


def run(schema) -> Report:
    report = Report()
    started = time.monotonic()
    for event in from_schema(schema).execute():
        if isinstance(event, events.PhaseStarted) and event.payload is not None:
            report.stateful_links = event.payload.transitions_total
        elif isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            report.statistic.on_scenario_finished(event.recorder)
            report.cases_by_phase[event.phase.value] += len(event.recorder.cases)
            for case_id, node in event.recorder.cases.items():
                label = node.value.operation.label
                report.operations.add(label)
                interaction = event.recorder.interactions.get(case_id)
                if interaction is not None and interaction.response is not None:
                    report.statuses.setdefault(label, Counter())[interaction.response.status_code] += 1
        elif isinstance(event, events.NonFatalError):
            report.errors.append(f"{event.label}: {event.info.title}: {event.info.message}"[:800])
        elif isinstance(event, events.FatalError):
            report.errors.append(f"fatal: {event.exception!r}")
    report.seconds = time.monotonic() - started
    return report
