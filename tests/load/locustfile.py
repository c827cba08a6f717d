"""The load test's traffic (`manage.py loadtest`, docs/deployment.md#load-test): people browsing the catalog
(45 %), opening entity pages (20 %), searching and typing in the search box (20 %), scripts calling the API
with tokens (10 %) and writes (5 %: registering descriptors, approval requests decided by a second person,
template runs). Plus the floor: one user calling the authenticated no-op `/api/v1/ping` (and `/healthz`)
at a steady rate in the same run, reported apart and kept out of the mix's figures.

Every request is named by its group (`browse:*` by the list's filters, `entity`, `search`, `typeahead`,
`api:*`, `write:*`, `floor:*`), so locust's statistics are per group. The people, their sessions and tokens, and the entities
they read come from the JSON file named by LOADTEST_DATA, written by `manage.py loadtest seed`."""

from __future__ import annotations

import itertools
import json
import os
import random
from collections import deque

from locust import HttpUser, constant_throughput, task

with open(os.environ["LOADTEST_DATA"]) as _handle:
    DATA = json.load(_handle)
# Each person's pace (requests per second). The offered load is users × pace; the driver steps the users.
PACE = float(os.environ.get("LOADTEST_PACE") or 1.0)
_slots = itertools.count()
_rng = random.Random()  # noqa: S311 (traffic shape, not secrets)


def _words(count: int) -> str:
    return " ".join(_rng.sample(DATA["words"], count))


class Person(HttpUser):
    """One member of a team: a browser session for the pages, a token for the API, and, for the approval
    workflow, the token of a reviewer of the same team (separation of duties: never the requester)."""

    wait_time = constant_throughput(PACE)

    def on_start(self) -> None:
        me = DATA["people"][next(_slots) % len(DATA["people"])]
        self.me = me
        self.written = itertools.count()
        # A fresh slice for each locust run of the same people (`manage.py loadtest` steps).
        offset = int(os.environ.get("LOADTEST_TARGET_OFFSET") or 0)
        self.targets = deque(me["targets"][offset:])
        self.waiting: deque[int] = deque()  # approval requests submitted, not yet decided

    # -- the browser's half: session cookie, pages ---------------------------------------------------
    def _page(self, url: str, name: str, **headers) -> None:
        self.client.get(url, name=name, headers=headers,
                        cookies={DATA["session_cookie"]: self.me["session"]})

    @task(45)
    def browse(self) -> None:
        kind = _rng.choice(DATA["kinds"])
        name, url = _rng.choice([
            ("all", "/catalog/"),
            ("kind", f"/catalog/?kind={kind}"),
            ("kind+owner", f"/catalog/?kind={kind}&owner={_rng.choice(DATA['owners'])}"),
            ("tag+lifecycle", "/catalog/?tag=pii&lifecycle=production"),
            ("page", f"/catalog/?kind={kind}&page={_rng.randint(2, 50)}"),
            ("q", f"/catalog/?q={_rng.choice(DATA['words'])}"),
            ("mine", "/catalog/?mine=true"),
        ])
        self._page(url, f"browse:{name}")

    @task(20)
    def entity(self) -> None:
        kind, name = _rng.choice(DATA["entities"])
        self._page(f"/catalog/{kind}/bench/{name}/", "entity")

    @task(20)
    def search(self) -> None:
        if _rng.random() < 0.5:
            self._page(f"/search/?q={_words(2)}", "search")
        else:  # what the search box asks while someone types
            word = _rng.choice(DATA["words"])
            self._page(f"/search/typeahead/?q={word[: _rng.randint(2, len(word))]}", "typeahead",
                       **{"HX-Request": "true"})

    # -- scripts: a token, no cookies ---------------------------------------------------------------
    def _api(self, method: str, url: str, name: str, *, token: str | None = None, **kwargs):
        self.client.cookies.clear()  # a session cookie would make the API ask for a CSRF token
        headers = {"Authorization": f"Bearer {token or self.me['token']}", "Accept": "application/json"}
        return self.client.request(method, url, name=name, headers=headers, **kwargs)

    @task(10)
    def api(self) -> None:
        pick = _rng.random()
        if pick < 0.4:
            kind, name = _rng.choice(DATA["entities"])
            self._api("GET", f"/api/v1/entities/by-name/{kind}/bench/{name}", "api:by-name")
        elif pick < 0.7:
            self._api("GET", _rng.choice([
                "/api/v1/entities?filter=kind=model,spec.type=classifier&limit=50",
                f"/api/v1/entities?filter=spec.owner={_rng.choice(DATA['owners'])}&limit=20",
                "/api/v1/entities?filter=metadata.tags=gpu&limit=50&fields=kind,metadata.name",
            ]), "api:list")
        elif pick < 0.85:
            self._api("GET", _rng.choice([
                "/api/v1/entity-facets?facet=kind&facet=spec.type&facet=spec.lifecycle",
                "/api/v1/entity-facets?facet=metadata.tags&filter=kind=model",
            ]), "api:facets")
        else:
            self._api("GET", f"/api/v1/search?q={_words(1)}", "api:search")

    # -- writes ---------------------------------------------------------------------------------------
    @task(5)
    def write(self) -> None:
        n = next(self.written)
        step = n % 3
        if step == 0:
            self._register(n)
        elif step == 1:
            self._approval()
        else:
            self._template_run(n)

    def _register(self, n: int) -> None:
        name = f"lt-{self.me['slot']}-{n}-{_rng.randrange(10**6)}"
        descriptor = (f"apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\n"
                      f"  description: registered by the load test\nspec:\n  type: service\n"
                      f"  lifecycle: experimental\n  owner: {self.me['team']}\n")
        self._api("POST", "/api/v1/locations/upload", "write:register", json={
            "source": f"loadtest/{self.me['slot']}/{name}",
            "files": [{"path": "catalog-info.yaml", "content": descriptor}]})

    def _approval(self) -> None:
        """Decide the oldest waiting request once its gates have run (the reviewer's token); otherwise
        submit a new one (the requester's)."""
        if self.waiting:
            pk = self.waiting[0]
            answer = self._api("GET", f"/api/v1/approval-requests/{pk}", "write:approval-read",
                               token=self.me["reviewer_token"])
            state = answer.json().get("state") if answer.ok else None
            if state == "in-review":
                self.waiting.popleft()
                self._api("POST", f"/api/v1/approval-requests/{pk}/decisions", "write:approve",
                          token=self.me["reviewer_token"],
                          json={"decision": "approve", "comment": "approved by the load test"})
                return
            if state != "pending":  # blocked by a gate, or gone: nothing to decide
                self.waiting.popleft()
        if self.targets:
            with self._api("POST", "/api/v1/approval-requests", "write:approval-submit", json={
                    "action": "deprecate", "target": self.targets.popleft(),
                    "params": {"reason": "load test"}, "justification": "load test"},
                    catch_response=True) as answer:
                if answer.ok:
                    self.waiting.append(answer.json()["id"])
                elif answer.status_code == 409 and "for the same change is already open" in answer.text:
                    answer.success()  # the portal's right answer: an earlier run (kept catalog) left it open
                else:
                    answer.failure(f"{answer.status_code}: {answer.text[:200]}")

    def _template_run(self, n: int) -> None:
        name = f"lt-{self.me['slot']}-{n}-{_rng.randrange(10**6)}"
        self._api("POST", "/api/v1/scaffolder/runs", "write:template-run", json={
            "templateRef": DATA["template"],
            "values": {"name": name, "title": "Load test model", "description": "Made by the load test.",
                       "owner": self.me["team"], "modelType": "classifier", "riskTier": 3}})


class Floor(HttpUser):
    """The per-request floor in the same run: an authenticated no-op and the unauthenticated health check."""

    fixed_count = 1
    wait_time = constant_throughput(4)

    def on_start(self) -> None:
        self.token = DATA["people"][0]["token"]

    @task(3)
    def ping(self) -> None:
        self.client.get("/api/v1/ping", name="floor:ping", headers={"Authorization": f"Bearer {self.token}"})

    @task(1)
    def healthz(self) -> None:
        self.client.get("/healthz", name="floor:healthz")
