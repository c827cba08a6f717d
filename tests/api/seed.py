"""The world the API fuzz run works on: the demo organisation and catalog plus one of each kind of
object an operation reads or changes, written through the project's services — and put back when a
fuzzed request destroys it, so that later operations still meet real objects."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from django.db import connections

from catalog import demo as catalog_demo
from catalog import services as catalog_services
from catalog.models import Entity, ExperimentRun, Location, ModelVersion
from portal.accounts import demo as org_demo
from portal.accounts import services as account_services
from portal.accounts.models import APIToken, Role, Team
from portal.governance import services as governance_services
from portal.governance.models import ApprovalRequest, State
from portal.governance.tasks import evaluate_gates
from portal.scaffolder import forms
from portal.scaffolder import services as scaffolder_services
from portal.scaffolder.templates import from_entity
from portal.techdocs import services as techdocs_services
from portal.techdocs.models import DocSite
from tests.factories import write_files

# As portal.site.mlflow_demo seeds them: champion=2, challenger=3.
FRAUD_VERSIONS = {"1": (0.88, []), "2": (0.91, ["champion"]), "3": (0.93, ["challenger"])}
# A platform admin, and a reviewer of the teams the workflows route to: every operation is open to her,
# so the fuzzer reaches the branches past the permission checks.
FUZZ_USER = "grace"
REVIEWS = ("fraud-ml", "risk-governance")
OWN_DESCRIPTOR = """apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: fuzz-target
  annotations:
    plinth.dev/techdocs-ref: dir:./docs
spec:
  type: service
  lifecycle: experimental
  owner: platform
"""
DOCS = ("component:default/plinth", "component:default/fuzz-target", "model:default/fraud-detector")
# (requester, action, target, params): each open (pending or in review) while the run goes on. None of
# them equals the schema's example request, so that example is created (201) and its links followed.
REQUESTS = (
    ("alice", "promote-model-version", "model:default/fraud-detector", {"version": "3", "alias": "staging"}),
    ("alice", "deprecate", "model:default/chargeback-predictor", {"reason": "merged into fraud-detector"}),
    (FUZZ_USER, "mark-production", "model:default/fraud-detector", {}),
)
# A request in one of these states blocks an identical new one (409): the fuzzer keeps that one.
OPEN = {State.PENDING, State.IN_REVIEW, State.APPROVED, State.EXECUTING, State.EXECUTION_FAILED}


@dataclass
class World:
    token: str
    workdir: Path
    users: dict
    entities: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, namespace, name)
    sites: list[tuple[str, str, str]] = field(default_factory=list)
    location_ids: list[int] = field(default_factory=list)
    request_ids: list[int] = field(default_factory=list)
    run_uids: list[str] = field(default_factory=list)
    token_ids: list[int] = field(default_factory=list)  # the fuzz user's spare tokens, to revoke
    restored: int = 0  # how often objects a request destroyed or closed were put back

    def path_values(self, path: str) -> list[dict]:
        """Path parameters naming objects that exist now, for an operation's path template. Called
        from the fuzzer's threads, so it reads no database: the lists are kept current by `after_call`."""
        if "/techdocs/sites/" in path:
            return [{"kind": k, "namespace": ns, "name": n} for k, ns, n in self.sites]
        if "/techdocs/definitions/" in path:
            return [{"kind": k, "namespace": ns, "name": n} for k, ns, n in self.entities if k == "api"]
        if "{model_version}" in path:  # a model's MLflow versions (fraud-detector's v3 has a synced run)
            return [{"kind": k, "namespace": ns, "name": n, "model_version": v} for k, ns, n in self.entities
                    if k == "model" for v in FRAUD_VERSIONS]
        if "{kind}" in path:
            return [{"kind": k, "namespace": ns, "name": n} for k, ns, n in self.entities]
        if "/model-cards/" in path:
            return [{"namespace": ns, "name": n} for k, ns, n in self.entities if k == "model"]
        if "/approval-requests/" in path:
            return [{"id": pk} for pk in self.request_ids]
        if "/locations/" in path:
            return [{"id": pk} for pk in self.location_ids]
        if "/tokens/" in path:
            return [{"id": pk} for pk in self.token_ids]
        if "/runs/" in path:
            return [{"uid": uid} for uid in self.run_uids]
        return []

    def after_call(self, method: str, path: str, status: int) -> None:
        """Put back what a successful destructive request took away (runs between two requests)."""
        if method == "DELETE" and "/locations/" in path and status == 204:
            self.register_catalog()
        elif method == "POST" and "/approval-requests/" in path and 200 <= status < 300:
            self.open_requests()
        elif method == "DELETE" and "/tokens/" in path and status == 204:
            # A random id may name the run's own token: revoked, every later request would be a 401.
            APIToken.objects.filter(user=self.users[FUZZ_USER]).update(revoked_at=None)
        else:
            return
        self.restored += 1
        connections.close_all()  # this thread's connections: the engine's thread is not Django's

    def register_catalog(self) -> None:
        plan = catalog_demo.load_catalog()
        assert not plan.errors, [str(e) for e in plan.errors]
        root = write_files(self.workdir / "repo", {"catalog-info.yaml": OWN_DESCRIPTOR,
                                                    "docs/index.md": "# Fuzz target\n\nSome *docs*.\n"})
        own = catalog_services.location_register(target=str(root / "catalog-info.yaml"),
                                                 actor=self.users[FUZZ_USER], file_roots=None)
        assert not own.errors, [str(e) for e in own.errors]
        # Its MLflow versions, as the MLflow sync stores them (they go with the entity when unregistered).
        fraud = Entity.objects.get(ref="model:default/fraud-detector")
        for version, (auc, aliases) in FRAUD_VERSIONS.items():
            ModelVersion.objects.get_or_create(
                entity=fraud, version=version,
                defaults={"version_number": int(version), "aliases": aliases, "run_id": f"run{version}",
                          "metrics": {"auc": auc, "precision": auc - 0.05}, "status": "READY"},
            )
        run, _ = ExperimentRun.objects.get_or_create(run_id="run3", defaults={"name": "train-v3", "metrics": {"auc": 0.93}})
        ModelVersion.objects.filter(entity=fraud, version="3").update(experiment_run=run)
        for ref in DOCS:
            entity = Entity.objects.filter(ref=ref).first()
            if entity is not None and not DocSite.objects.filter(entity=entity).exists():
                techdocs_services.entity_docs_build(entity=entity)
        self.entities = list(Entity.objects.order_by("ref").values_list("kind_key", "namespace", "name_key"))
        self.sites = list(DocSite.objects.order_by("pk").values_list("entity__kind_key", "entity__namespace",
                                                                      "entity__name_key"))
        self.location_ids = list(Location.objects.order_by("pk").values_list("pk", flat=True))

    def open_requests(self) -> None:
        """One open request per recipe (a new one where the last was closed), past its gates."""
        ids = []
        for requester, action, target, params in REQUESTS:
            req = ApprovalRequest.objects.filter(requester=self.users[requester], action=action, target_ref=target,
                                                 state__in=OPEN).order_by("-pk").first()
            if req is None:
                req = governance_services.request_create(actor=self.users[requester], action=action,
                                                         target=target, params=params)
            ids.append(req.pk)
        # The gates, as a worker would run them (in this thread, so that no state changes under the
        # fuzzer's feet); requests the fuzzer submitted get theirs too.
        for pk in ApprovalRequest.objects.filter(state=State.PENDING).values_list("pk", flat=True):
            evaluate_gates(pk)
        self.request_ids = ids


def seed(workdir: Path) -> World:
    org = org_demo.load_org()
    users = org["users"]
    grace = users[FUZZ_USER]
    for team in REVIEWS:
        account_services.membership_set(user=grace, team=Team.objects.get(name=team), role=Role.REVIEWER)
    _, token = account_services.token_create(user=grace, name="fuzz")
    world = World(token=token, workdir=workdir, users=users)
    world.token_ids = [account_services.token_create(user=grace, name=f"fuzz spare {n}")[0].pk for n in range(2)]
    world.register_catalog()
    world.open_requests()
    world.run_uids = [str(_start_run(grace, Entity.objects.get(ref="template:default/ml-model-service")).uid)]
    return world


def _start_run(user, entity):
    template = from_entity(entity)
    pages = forms.pages(template, user)
    values = forms.with_defaults(pages, {
        "name": "fuzz-service", "title": "Fuzz service", "description": "Scores things.", "owner": "platform",
        "modelType": "classifier", "riskTier": 2})
    errors = {f: m for page in pages for f, m in forms.validate_page(page, values).items()}
    assert not errors, errors
    parameters, secrets = forms.split_secrets(pages, values)
    return scaffolder_services.run_create(template=template, entity=entity, actor=user, parameters=parameters,
                                          secret_values=secrets, dry_run=True,
                                          owner_team=forms.owner_team(pages, values, user))
