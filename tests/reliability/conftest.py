"""The background jobs under fault injection, each behind one small interface, and the bench they run on.

A job knows how to set itself up, start, prove that it is in the middle of its work (a hold it reached,
not a sleep), recover the way production does when its message is lost (the beat task that owns it), and
check its end state: done exactly once, counted by its side effects.

| Job | Held mid-task at | Side effects counted |
|---|---|---|
| scaffolder run | its `debug:wait` step, after publish:git and catalog:register | commits in the published bundle, the commit hash, register/finish audit events, steps |
| docs build | storing the pages (the database write is held) | pages, their ids (rewritten = built twice), search documents |
| catalog refresh | storing the refresh (the database write is held) | refresh audit events, the changed entity, the next refresh time |
| MLflow sync | MLflow's registered-models search (a proxy holds it) | the new model's entity, its create audit event, its versions |
| notifications | the first e-mail's DATA, before the SMTP server's 250 | in-app notifications, accepted e-mails (one per reviewer, one Message-ID each) |
"""

from __future__ import annotations

import contextlib
import os
import random
import string
import textwrap
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from tests.conftest import WorkerProcess, start_celery_worker
from tests.faults import (
    DatabaseWriteHold,
    HoldingProxy,
    RestartableRedis,
    SmtpSink,
    kill_worker,
    wait_active,
    wait_for,
    worker_busy,
    worker_idle,
)

DONE_TIMEOUT = 120.0  # seconds a job may take to finish after a fault, on a loaded 2-core machine


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def random_text(chars: int) -> str:
    """Words of random letters: text that compresses poorly (to fill a disk), still valid Markdown."""
    words, total = [], 0
    while total < chars:
        words.append("".join(random.choices(string.ascii_lowercase, k=random.randint(3, 12))))
        total += len(words[-1]) + 1
    return " ".join(words)[:chars]


def audit_count(action: str, target: str) -> int:
    from portal.core.models import AuditEvent

    return AuditEvent.objects.filter(action=action, target=target).count()


class Job:
    """One background job under test. `held_by_database`: the job is held by a DatabaseWriteHold
    (started inside it), not by a hold of its own."""

    name = ""
    held_by_database = False
    starts_before_hold = False  # held by the database, but must write before the hold is taken
    tables: tuple[str, ...] = ()  # what a DatabaseWriteHold must lock on PostgreSQL to hold it

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.task_id = ""

    def prepare(self) -> None:
        """Data, before any worker runs (committed: the worker sees it)."""

    def start(self) -> None:
        raise NotImplementedError

    def wait_before_hold(self) -> None:
        """For `starts_before_hold` jobs: until they reached the point the hold will stop them at."""

    def wait_mid_task(self, worker: WorkerProcess) -> None:
        raise NotImplementedError

    def recover(self, now) -> None:
        """What the beat does for this job when its message was lost or its worker died."""

    def wait_done(self) -> None:
        raise NotImplementedError

    def assert_done_once(self) -> None:
        raise NotImplementedError


# --- scaffolder ---------------------------------------------------------------------------------

SCAFFOLD_TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata: {{name: {name}, title: Fault run}}
spec:
  owner: fraud-ml
  type: test
  parameters: []
  steps:
    - {{id: fetch, name: Fetch, action: fetch:template, input: {{url: ./skeleton, values: {{name: {name}}}}}}}
    - {{id: publish, name: Publish, action: publish:git, input: {{owner: faults, repo: {name}}}}}
    - {{id: register, name: Register, action: catalog:register,
        input: {{repoContentsUrl: "${{{{ steps.publish.output.repoContentsUrl }}}}"}}}}
    - {{id: wait, name: Wait, action: debug:wait, input: {{seconds: {wait}}}}}
    - {{id: done, name: Done, action: debug:log, input: {{message: finished}}}}
"""
SKELETON = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ${{ values.name }}
spec: {type: service, lifecycle: experimental, owner: fraud-ml}
"""


class ScaffolderRun(Job):
    """Held in its wait step (or just after it, when it records the step as done) by the database."""

    name = "scaffolder run"
    held_by_database = True
    starts_before_hold = True
    tables = ("scaffolder_runstep",)

    def __init__(self, bench: Bench, wait: float = 3, payload: int = 0) -> None:
        super().__init__(bench)
        self.wait = wait  # the time the database hold has to be taken in
        self.payload = payload  # bytes of incompressible data the skeleton carries (to fill a disk)
        self.commit = ""

    def prepare(self) -> None:
        from tests.scaffolder.conftest import register_template

        self.template = unique("fault-run")
        self.entity = register_template(
            self.bench.tmp_path,
            SCAFFOLD_TEMPLATE.format(name=self.template, wait=self.wait),
            {"skeleton/catalog-info.yaml": SKELETON},
        )
        if self.payload:
            (Path(self.entity.source).parent / "skeleton" / "data.bin").write_bytes(os.urandom(self.payload))

    def start(self) -> None:
        from tests.scaffolder.conftest import start

        self.run = start(self.bench.users["alice"], self.entity.name, {}, entity=self.entity)

    def wait_before_hold(self) -> None:
        wait_for(
            lambda: self.run.logs.filter(message__startswith="waiting").exists(),
            timeout=DONE_TIMEOUT, what="the run to reach its wait step",
        )

    def wait_mid_task(self, worker: WorkerProcess) -> None:
        from portal.scaffolder.models import RunStep

        steps = {s.step_id: s for s in RunStep.objects.filter(run=self.run)}
        assert steps["publish"].status == "done" and steps["register"].status == "done", steps
        assert steps["wait"].status == "running", "the run got past its wait step before the hold"
        self.commit = steps["publish"].output["commitHash"]

    def recover(self, now) -> None:
        from portal.scaffolder import conf, services

        # Late enough for a lost running run (stale heartbeat) and a queued one nobody took (60 s).
        services.runs_reap(now=now + timedelta(seconds=max(conf.stale_seconds(), 60) + 1))

    def wait_done(self) -> None:
        wait_for(lambda: self._reload().finished, timeout=DONE_TIMEOUT, what=f"{self.name} to finish")

    def _reload(self):
        self.run.refresh_from_db()
        return self.run

    @property
    def bare(self) -> Path:
        from portal.scaffolder import conf

        return conf.publish_root() / "repos" / "faults" / f"{self.template}.git"

    def commits(self) -> list[str]:
        from tests.scaffolder.conftest import published_git

        return published_git("faults", self.template, "rev-list", "--all").split()

    @property
    def checkout(self) -> Path:
        from portal.scaffolder import conf

        return conf.publish_root() / "checkouts" / "faults" / self.template

    def assert_done_once(self, *, failed_before: int = 0) -> None:
        from catalog.models import Entity, Location

        run = self._reload()
        assert run.status == "succeeded", (run.error, list(run.logs.values_list("message", flat=True)))
        target = f"run:{run.uid}"
        assert audit_count("scaffolder.run.succeeded", target) == 1
        assert audit_count("scaffolder.run.failed", target) == failed_before
        assert [s.status for s in run.steps.order_by("index")] == ["done"] * 5
        # Published once: one commit, the one recorded by the step (and seen mid-task, if it was).
        recorded = run.steps.get(step_id="publish").output["commitHash"]
        assert self.commits() == [recorded], (self.commits(), recorded)
        assert self.commit in ("", recorded), (self.commit, recorded)
        location = Location.objects.get(type="upload", entities__ref=f"component:default/{self.template}")
        assert audit_count("catalog.location.register", f"location:{location.pk}") == 1
        assert audit_count("catalog.location.refresh", f"location:{location.pk}") == 0
        assert Entity.objects.filter(ref=f"component:default/{self.template}").count() == 1


# --- docs build ---------------------------------------------------------------------------------

DOCS_DESCRIPTOR = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: {name}
  annotations:
    plinth.dev/techdocs-ref: dir:./docs
spec: {{type: service, lifecycle: production, owner: fraud-ml}}
"""


class DocsBuild(Job):
    name = "docs build"
    held_by_database = True
    tables = ("techdocs_docsite",)

    def __init__(self, bench: Bench, payload: int = 0, first: bool = False) -> None:
        super().__init__(bench)
        self.payload = payload  # characters of text on the new page (to fill a disk)
        self.first = first  # the build under test is the site's first (none stored before)

    def prepare(self) -> None:
        from catalog import services as catalog_services
        from catalog.models import Entity
        from portal.techdocs import services

        self.entity_name = unique("fault-docs")
        self.root = self.bench.tmp_path / self.entity_name
        (self.root / "docs").mkdir(parents=True)
        (self.root / "catalog-info.yaml").write_text(DOCS_DESCRIPTOR.format(name=self.entity_name))
        (self.root / "docs" / "index.md").write_text("# Version 1\n")
        (self.root / "docs" / "guide.md").write_text("# Guide\n\nUnchanged.\n")
        catalog_services.location_register(target=str(self.root / "catalog-info.yaml"), actor=None, file_roots=None)
        self.ref = f"component:default/{self.entity_name}"
        if not self.first:
            services.entity_docs_build(entity=Entity.objects.get(ref=self.ref))
        # The change the build under test must store, whole or not at all.
        (self.root / "docs" / "index.md").write_text("# Version 2\n\nSee [the new page](new.md).\n")
        (self.root / "docs" / "new.md").write_text("# New page\n\n" + random_text(self.payload))
        self.pages: dict[str, int] = {}

    def start(self) -> None:
        from portal.techdocs.tasks import build_entity_docs

        self.task_id = build_entity_docs.delay([self.ref]).id

    def wait_mid_task(self, worker: WorkerProcess) -> None:
        wait_active(worker.hostname, {self.task_id})

    def recover(self, now) -> None:
        from portal.techdocs.tasks import rebuild_all_docs

        rebuild_all_docs()

    def _site(self):
        from portal.techdocs.models import DocSite

        return DocSite.objects.filter(entity__ref=self.ref).first()

    def wait_done(self) -> None:
        from portal.search.models import SearchDocument
        from portal.techdocs.models import DocPage

        wait_for(
            lambda: DocPage.objects.filter(site__entity__ref=self.ref, title="Version 2").exists()
            and SearchDocument.objects.filter(key=f"techdocs:{self.ref}#new/").exists(),
            timeout=DONE_TIMEOUT, what=f"{self.name} to store version 2 and index it",
        )

    def assert_done_once(self) -> None:
        from portal.search.models import SearchDocument
        from portal.techdocs.models import DocPage

        site = self._site()
        assert site.status == "ok", site.errors
        rows = {p.path: (p.pk, p.title) for p in DocPage.objects.filter(site=site)}
        assert {path: title for path, (_, title) in rows.items()} == {
            "": "Version 2", "guide/": "Guide", "new/": "New page"
        }
        assert site.page_count == 3
        pks = {path: pk for path, (pk, _) in rows.items()}
        # Stored once: a second store would have replaced every row (new ids).
        if self.pages:
            assert pks == self.pages, "the docs were stored again"
        self.pages = pks
        keys = set(SearchDocument.objects.filter(key__startswith=f"techdocs:{self.ref}#").values_list("key", flat=True))
        assert keys == {f"techdocs:{self.ref}#{path}" for path in ("", "guide/", "new/")}, keys


# --- catalog refresh ------------------------------------------------------------------------------

REFRESH_DESCRIPTOR = """\
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {{name: {name}, description: {description}}}
spec: {{type: service, lifecycle: production, owner: fraud-ml}}
"""


class CatalogRefresh(Job):
    name = "catalog refresh"
    held_by_database = True
    tables = ("catalog_location",)

    def __init__(self, bench: Bench, payload: int = 0) -> None:
        super().__init__(bench)
        self.payload = payload  # components the refresh adds, each with a long description

    def descriptor(self, description: str, extra: int = 0) -> str:
        docs = [REFRESH_DESCRIPTOR.format(name=self.entity_name, description=description)]
        docs += [REFRESH_DESCRIPTOR.format(name=f"{self.entity_name}-{i}", description=random_text(9000))
                 for i in range(extra)]
        return "---\n".join(docs)

    def prepare(self) -> None:
        from catalog import services as catalog_services
        from catalog.models import Location

        self.entity_name = unique("fault-refresh")
        path = self.bench.tmp_path / self.entity_name / "catalog-info.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(self.descriptor("Version 1"))
        plan = catalog_services.location_register(target=str(path), actor=None, file_roots=None)
        self.location = plan.location
        path.write_text(self.descriptor("Version 2", self.payload))
        # Due now, as the beat would find it.
        Location.objects.filter(pk=self.location.pk).update(next_refresh_at=timezone.now() - timedelta(seconds=1))

    def start(self) -> None:
        from catalog.tasks import refresh_location

        self.task_id = refresh_location.delay(self.location.pk).id

    def wait_mid_task(self, worker: WorkerProcess) -> None:
        wait_active(worker.hostname, {self.task_id})

    def recover(self, now) -> None:
        from catalog.tasks import refresh_due_locations

        refresh_due_locations()

    def wait_done(self) -> None:
        from catalog.models import Entity

        wait_for(
            lambda: Entity.objects.filter(name=self.entity_name, description="Version 2").exists(),
            timeout=DONE_TIMEOUT, what=f"{self.name} to store version 2",
        )

    def assert_done_once(self) -> None:
        from catalog.models import Entity, Location
        from portal.core.models import AuditEvent

        assert Entity.objects.get(name=self.entity_name).description == "Version 2"
        names = sorted(Entity.objects.filter(location_id=self.location.pk).values_list("name", flat=True))
        assert len(names) == 1 + self.payload, names
        events = AuditEvent.objects.filter(action="catalog.location.refresh", target=f"location:{self.location.pk}")
        assert events.count() == 1, [(e.created_at, e.payload[:300]) for e in events]
        location = Location.objects.get(pk=self.location.pk)
        assert location.status == "ok" and location.next_refresh_at > timezone.now()


# --- MLflow sync ----------------------------------------------------------------------------------


_RUNS: dict[str, str] = {}


def _mlflow_run(client) -> str:
    """One training run (per MLflow server) that every test model version comes from."""
    if client.tracking_uri not in _RUNS:
        experiment = client.get_experiment_by_name("fault-injection")
        experiment_id = experiment.experiment_id if experiment else client.create_experiment("fault-injection")
        run_id = client.create_run(experiment_id).info.run_id
        client.log_metric(run_id, "auc", 0.9)
        client.set_terminated(run_id)
        _RUNS[client.tracking_uri] = run_id
    return _RUNS[client.tracking_uri]


class MlflowSync(Job):
    name = "MLflow sync"

    def __init__(self, bench: Bench, payload: int = 0) -> None:
        super().__init__(bench)
        self.payload = payload  # parameters of 5,000 characters on the version's run (to fill a disk)

    def prepare(self) -> None:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.model = unique("fault-model")
        client = MlflowClient(tracking_uri=self.bench.mlflow_url, registry_uri=self.bench.mlflow_url)
        run_id = _mlflow_run(client)
        if self.payload:
            run_id = client.create_run(client.get_experiment_by_name("fault-injection").experiment_id).info.run_id
            client.log_batch(run_id, params=[Param(f"p{i}", random_text(5000)) for i in range(self.payload)])
            client.set_terminated(run_id)
        client.create_registered_model(self.model)
        client.create_model_version(
            self.model, source=f"runs:/{run_id}/model", run_id=run_id, await_creation_for=0
        )
        self.ref = f"model:default/{self.model}"
        self.started = timezone.now()

    def start(self) -> None:
        from catalog.tasks import sync_mlflow

        self.task_id = sync_mlflow.delay().id

    def wait_mid_task(self, worker: WorkerProcess) -> None:
        assert self.bench.proxy.held.wait(DONE_TIMEOUT), "the sync never reached MLflow's model search"
        wait_active(worker.hostname, {self.task_id})

    def recover(self, now) -> None:
        from catalog.tasks import sync_mlflow

        sync_mlflow.delay()  # the next beat

    def wait_done(self) -> None:
        from catalog.models import MlflowSyncState, ModelVersion

        wait_for(
            lambda: ModelVersion.objects.filter(entity__ref=self.ref).exists()
            and MlflowSyncState.objects.filter(last_success_at__gt=self.started).exists(),
            timeout=DONE_TIMEOUT, what=f"{self.name} to store {self.model} and finish",
        )

    def assert_done_once(self) -> None:
        from catalog.models import Entity, MlflowSyncState, ModelVersion

        assert Entity.objects.filter(ref=self.ref).count() == 1
        assert audit_count("catalog.entity.create", self.ref) == 1
        assert list(ModelVersion.objects.filter(entity__ref=self.ref).values_list("version", flat=True)) == ["1"]
        state = MlflowSyncState.objects.order_by("pk").first()
        assert state.last_success_at and state.last_success_at > self.started


# --- notifications --------------------------------------------------------------------------------

PROMOTE = {
    "action": "promote-model-version",
    "target": "model:default/fraud-detector",
    "params": {"version": "3", "alias": "champion"},
}


class Notifications(Job):
    name = "notifications"

    def prepare(self) -> None:
        from catalog import demo as catalog_demo
        from catalog import services as catalog_services
        from catalog.models import Entity, ModelVersion

        catalog_services.location_register(target=str(catalog_demo.CATALOG_DIR / "catalog-info.yaml"), actor=None,
                                           file_roots=None)
        entity = Entity.objects.get(ref="model:default/fraud-detector")
        for version, aliases in (("2", ["champion"]), ("3", ["challenger"])):
            ModelVersion.objects.update_or_create(
                entity=entity, version=version,
                defaults={"version_number": int(version), "aliases": aliases, "status": "READY",
                          "metrics": {"auc": 0.9, "precision": 0.85}, "run_id": f"run{version}"},
            )

    def start(self) -> None:
        from portal.governance import services

        self.bench.smtp.hold_next()
        self.request = services.request_create(actor=self.bench.users["alice"], **PROMOTE)

    def wait_mid_task(self, worker: WorkerProcess) -> None:
        assert self.bench.smtp.held.wait(DONE_TIMEOUT), "no notification e-mail reached the SMTP server"

    def recover(self, now) -> None:
        from portal.governance import conf, outbox, services

        lease = int(conf.get("EXECUTION_LEASE_SECONDS"))
        services.sla_sweep(now=now + timedelta(seconds=lease + 1))
        outbox.relay(now=now + timedelta(seconds=int(conf.get("OUTBOX_REDELIVER_SECONDS")) + 1))

    def reviewers(self) -> list[str]:
        return sorted(self.bench.users[name].email for name in ("erin", "frank"))

    def _mails(self):
        return self.bench.smtp.matching(f"#{self.request.pk} ")

    def wait_done(self) -> None:
        from portal.governance.models import Notification

        wait_for(
            lambda: len(self._mails()) >= 2
            and not Notification.objects.filter(request=self.request, kind="review", emailed=False).exists(),
            timeout=DONE_TIMEOUT, what="both reviewers' e-mails",
        )

    def assert_done_once(self) -> None:
        from portal.governance.models import Notification, OutboxMessage

        notes = Notification.objects.filter(request=self.request, kind="review")
        assert sorted(n.user.email for n in notes) == self.reviewers()
        assert all(n.emailed for n in notes)
        mails = self._mails()
        assert sorted(str(m["To"]) for m in mails) == self.reviewers(), [str(m["To"]) for m in mails]
        assert len({m["Message-ID"] for m in mails}) == 2
        # The worker marked the outbox rows of finished tasks done: they are never published again.
        gates = OutboxMessage.objects.get(key=f"req:{self.request.pk}:gates")
        assert gates.done_at is not None


JOBS = (ScaffolderRun, DocsBuild, CatalogRefresh, MlflowSync, Notifications)


# --- the bench --------------------------------------------------------------------------------------


class Bench:
    """Everything the jobs share: our own Redis, MLflow behind a holding proxy, an SMTP server, a
    scaffolder root, the demo users, and the workers started on them."""

    def __init__(self, *, tmp_path: Path, mlflow_url: str, settings) -> None:
        from portal.accounts import demo as org_demo
        from tests.conftest import use_broker

        self.tmp_path = tmp_path
        self.mlflow_url = mlflow_url
        self.redis = RestartableRedis()
        self.previous_broker = None
        from portal.celery import app

        self.previous_broker = app.conf.broker_url
        use_broker(self.redis.url)
        self.proxy = HoldingProxy(mlflow_url, b"/registered-models/search", forward_if_alive=True)
        self.smtp = SmtpSink()
        self.settings = settings
        self.scaffolder_root = tmp_path / "scaffolder"
        settings.PLINTH_SCAFFOLDER_ROOT = self.scaffolder_root
        settings.MLFLOW_TRACKING_URI = mlflow_url
        self.org = org_demo.load_org()
        self.users = self.org["users"]
        self.workers: list[WorkerProcess] = []
        self.jobs: list[Job] = []
        self.holds: list[DatabaseWriteHold] = []

    def worker_env(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": self.proxy.url,
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "300",  # a held call must wait, not time out and retry
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(self.smtp.port),
            "EMAIL_TIMEOUT": "300",
            "PLINTH_SCAFFOLDER_ROOT": str(self.scaffolder_root),
        }

    def use_scaffolder_root(self, path: Path) -> None:
        """Before any worker starts: where runs write (e.g. a small disk)."""
        assert not self.workers, "set the scaffolder root before starting workers"
        self.scaffolder_root = path
        self.settings.PLINTH_SCAFFOLDER_ROOT = path

    def stop_workers(self) -> None:
        for worker in self.workers:
            kill_worker(worker)

    def reconnect(self) -> None:
        """Drop this process's connections to the broker (after it was restarted)."""
        from tests.conftest import use_broker

        use_broker(self.redis.url)

    def start_worker(self, concurrency: int = 5, *, wait: bool = True, **env: str) -> WorkerProcess:
        """`wait=False`: prepare jobs while it starts, then `worker.wait_ready()`."""
        worker = start_celery_worker(
            self.redis.url, concurrency=concurrency, env={**self.worker_env(), **env}, wait=wait
        )
        self.workers.append(worker)
        return worker

    def add(self, *kinds: type[Job]) -> list[Job]:
        """Prepare jobs. What their set-up queues (docs builds of registered entities) goes to another
        Redis database that no worker reads: it is not part of any case."""
        from tests.conftest import use_broker

        jobs = [kind(self) for kind in kinds]
        use_broker(self.redis.url.rsplit("/", 1)[0] + "/1")
        try:
            for job in jobs:
                job.prepare()
        finally:
            use_broker(self.redis.url)
        self.jobs += jobs
        return jobs

    def start_all_mid_task(self, worker: WorkerProcess, jobs: list[Job] | None = None) -> DatabaseWriteHold | None:
        """Start every job and return when each is provably mid-task. Jobs with holds of their own go
        first; jobs held by the database are held by a DatabaseWriteHold (on SQLite it holds every
        write), returned still held."""
        try:
            return self._start_all_mid_task(worker, self.jobs if jobs is None else jobs)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.logs()}") from exc

    def logs(self, lines: int = 60) -> str:
        return "\n".join(
            f"--- worker {w.hostname} ---\n" + "\n".join(w.log.splitlines()[-lines:]) for w in self.workers
        )

    def _start_all_mid_task(self, worker: WorkerProcess, jobs: list[Job]) -> DatabaseWriteHold | None:
        own = [j for j in jobs if not j.held_by_database]
        early = [j for j in jobs if j.held_by_database and j.starts_before_hold]
        late = [j for j in jobs if j.held_by_database and not j.starts_before_hold]
        for group in (own, early):
            for job in group:
                job.start()
            for job in group:
                if job.held_by_database:
                    job.wait_before_hold()
                else:
                    job.wait_mid_task(worker)
        if not early + late:
            return None
        hold = DatabaseWriteHold([t for job in early + late for t in job.tables]).__enter__()
        self.holds.append(hold)
        for job in late:
            job.start()
        for job in early + late:
            job.wait_mid_task(worker)
        if hold.vendor == "postgresql":  # proof that each is blocked at its write, not merely started
            wait_for(lambda: hold.waiting() >= len(early + late), timeout=DONE_TIMEOUT,
                     what="every job held by the database to wait for its lock")
        return hold

    def release_holds(self, hold: DatabaseWriteHold | None = None) -> None:
        self.proxy.release.set()
        self.smtp.release.set()
        if hold is not None:
            hold.release()

    def settle(self, timeout: float = DONE_TIMEOUT) -> None:
        """Until every live worker is idle, retries included: what the jobs do on their own is done.
        Only then may the beat's recovery run "later" (it is called with a clock moved forward; run
        early, it would race tasks that are still in flight, which it never does in production)."""
        for worker in self.workers:
            if worker.alive():
                try:
                    wait_for(lambda w=worker: worker_idle(w.hostname), timeout=timeout,
                             what=f"worker {worker.hostname} to settle", every=0.5)
                except AssertionError as exc:
                    raise AssertionError(f"{exc}: {worker_busy(worker.hostname)}\n{self.logs()}") from exc

    def recover_all(self, now=None) -> None:
        """The beat's recovery for every job, as it would run once the workers have settled."""
        self.settle()
        now = now or timezone.now()
        # Each recovery is a pass over all jobs of its kind, as the beat runs it: once per kind. Twice, the
        # second scaffolder reap (its clock moved past the stale limit) took the run the first had just
        # queued for a live worker as lost, and two workers published it at once.
        for job in {type(job): job for job in self.jobs}.values():
            job.recover(now)

    def assert_all_done_once(self) -> None:
        failures = []
        for job in self.jobs:
            try:
                job.wait_done()
                job.assert_done_once()
            except AssertionError as exc:
                failures.append(f"{job.name}: {exc}")
        if failures:
            raise AssertionError("\n".join(failures) + "\n" + self.logs())

    def close(self) -> None:
        from tests.conftest import use_broker

        started = time.monotonic()
        for hold in self.holds:
            hold.release()  # a case that failed half-way must not leave the database locked
        for worker in self.workers:
            kill_worker(worker)  # the case is over: nothing to finish gracefully
            with contextlib.suppress(OSError):
                worker.log_path.unlink()
        self.proxy.close()
        self.smtp.close()
        use_broker(self.previous_broker)
        self.redis.close()
        print(f"bench closed in {elapsed(started):.1f} s")


@pytest.fixture
def bench(transactional_db, tmp_path, mlflow_url, settings):
    b = Bench(tmp_path=tmp_path, mlflow_url=mlflow_url, settings=settings)
    try:
        yield b
    finally:
        b.close()


def lines(text: str) -> str:
    return textwrap.dedent(text).strip()


def elapsed(since: float) -> float:
    return time.monotonic() - since
