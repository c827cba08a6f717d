"""Writes of the scaffolder: creating, claiming, cancelling and finishing runs. Each state change that
matters (created, cancelled, finished, failed by the reaper, retried) writes its audit event in the same
transaction."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from portal.accounts import permissions
from portal.core import usage
from portal.core.audit import audit_record
from portal.core.usage import Client, EventType

from . import conf, secrets
from .models import Run, RunLog, RunStatus, RunStep, StepStatus
from .templates import Template

log = logging.getLogger("plinth.scaffolder")


@transaction.atomic
def run_create(
    *,
    template: Template,
    entity,
    actor,
    parameters: dict,
    secret_values: dict[str, str],
    dry_run: bool,
    owner_team=None,
) -> Run:
    """Store a run (parameters without secrets), its steps, and queue it after commit. A run created
    for a team needs the edit right in it (what it registers is checked again by the catalog)."""
    if not permissions.may_create_for_team(actor, owner_team.pk if owner_team else None):
        raise PermissionDenied("You may only create runs for teams in which you are a member, maintainer or admin.")
    run = Run.objects.create(
        template_ref=template.ref,
        template_title=template.title,
        template_source=entity.source,
        template=entity.data,
        parameters=parameters,
        secret_names=sorted(secret_values),
        dry_run=dry_run,
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        owner_team=owner_team,
    )
    RunStep.objects.bulk_create(
        [RunStep(run=run, index=s.index, step_id=s.id, name=s.name, action=s.action) for s in template.steps]
    )
    secrets.store(run.uid, secret_values)
    audit_record(
        actor=actor,
        action="scaffolder.run.create",
        target=f"run:{run.uid}",
        after={"template": template.ref, "dry_run": dry_run, "parameters": parameters},
    )
    transaction.on_commit(lambda: enqueue(run))
    usage.record(EventType.TEMPLATE_RUN_STARTED, user=actor, team=owner_team, subject=template.ref,
                   data={"dry_run": dry_run})
    return run


# The task is sent by name, so that the services never import the tasks that call them (tasks.py
# registers it under this name).
EXECUTE_RUN_TASK = "portal.scaffolder.tasks.execute_run"


def enqueue(run: Run) -> bool:
    """Queue the run's execution. False when the broker is unreachable: the run stays queued (and
    says so on its page) and the reaper queues it again once it has waited a minute."""
    from portal.celery import app

    limit = conf.run_time_limit()
    try:
        app.send_task(EXECUTE_RUN_TASK, args=(run.pk,), time_limit=limit + 60)
    except Exception as exc:  # the run is committed: never turn a broker outage into an error page
        log.warning("could not queue run %s (%s); the reaper will queue it again", run.uid, exc)
        return False
    return True


def run_claim(run_id: int, task_id: str = "") -> Run | None:
    """Atomically take a run for execution: a queued run, a running one whose heartbeat stopped (its
    worker was lost), or a running one claimed by this very task: Celery delivers a message again with
    the same task id only when the process executing it died (acks_late + reject_on_worker_lost).
    Returns None when someone else is executing it or it has finished. Each claim counts an attempt,
    and the attempt number fences the executor: a worker whose run was taken over stops."""
    now = timezone.now()
    stale = now - timedelta(seconds=conf.stale_seconds())
    claimable = (
        Q(status=RunStatus.QUEUED)
        | Q(status=RunStatus.RUNNING, heartbeat_at__lt=stale)
        | Q(status=RunStatus.RUNNING, heartbeat_at__isnull=True)
    )
    if task_id:
        claimable |= Q(status=RunStatus.RUNNING, task_id=task_id[:64])
    with transaction.atomic():
        updated = Run.objects.filter(claimable, pk=run_id).update(
            status=RunStatus.RUNNING, heartbeat_at=now, attempts=F("attempts") + 1, task_id=task_id[:64]
        )
        if not updated:
            return None
        run = Run.objects.get(pk=run_id)
        if run.started_at is None:
            run.started_at = now
            run.save(update_fields=["started_at"])
    return run


def run_heartbeat(run_id: int, attempt: int | None = None) -> bool:
    """Refresh the heartbeat; False when the run is no longer ours (finished, or another attempt took it)."""
    owned = Run.objects.filter(pk=run_id, status=RunStatus.RUNNING)
    if attempt is not None:
        owned = owned.filter(attempts=attempt)
    return owned.update(heartbeat_at=timezone.now()) == 1


def run_standing(run: Run) -> tuple[bool, str | None]:
    """Read before each step, in one query: is `run` (as claimed by this executor) still this executor's
    to run, and who asked to cancel it (None: nobody; run_cancel)."""
    row = Run.objects.filter(pk=run.pk).values_list("status", "attempts", "cancel_requested_at", "cancelled_by").first()
    if row is None:
        return False, None
    status, attempts, requested_at, cancelled_by = row
    return status == RunStatus.RUNNING and attempts == run.attempts, None if requested_at is None else cancelled_by


def run_log(run: Run, message: str, *, step_id: str = "", level: str = "info") -> None:
    RunLog.objects.create(run=run, step_id=step_id, level=level, message=message[:10_000])
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())


def step_update(run: Run, index: int, **fields) -> None:
    RunStep.objects.filter(run=run, index=index).update(**fields)


def steps_reset(run: Run, *, keep: list[int] = ()) -> None:
    """Steps back to pending before a new attempt, except those in `keep` (done steps whose effect
    outside the workspace, such as a published repository, must not happen twice)."""
    RunStep.objects.filter(run=run).exclude(index__in=list(keep)).update(
        status=StepStatus.PENDING, message="", output={}, started_at=None, finished_at=None
    )


@transaction.atomic
def run_finish(
    run: Run, *, ok: bool, error: str = "", output: dict | None = None, files: list | None = None, actor=None,
    cancelled: bool = False,
) -> Run:
    """End the run once: a run that is already finished (the reaper failed it while its worker was
    merely slow, or another attempt finished it) is left as it is, with no second audit event.
    `cancelled`: it stopped because someone cancelled it (run_cancel), not because it failed."""
    current = Run.objects.select_for_update().get(pk=run.pk)
    if current.finished:
        return current
    run.status = RunStatus.CANCELLED if cancelled else RunStatus.SUCCEEDED if ok else RunStatus.FAILED
    run.error = error
    run.output = output or {}
    run.files = files or []
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "error", "output", "files", "finished_at"])
    if not ok or cancelled:
        why = "the run was cancelled" if cancelled else "the run failed earlier"
        RunStep.objects.filter(run=run, status__in=[StepStatus.PENDING, StepStatus.RUNNING]).update(
            status=StepStatus.SKIPPED, message=f"not run: {why}"
        )
    if cancelled:
        # Whoever cancelled it was audited when they asked (scaffolder.run.cancel); this is its end.
        audit_record(actor=actor if actor is not None else run.created_by, action="scaffolder.run.cancelled",
                     target=f"run:{run.uid}", before={"status": current.status},
                     after={"status": RunStatus.CANCELLED, "cancelledBy": current.cancelled_by,
                            "template": run.template_ref, "dry_run": run.dry_run})
        secrets.discard(run.uid)
        _record_cancelled(run)
        return run
    audit_record(
        actor=actor if actor is not None else run.created_by,
        action=f"scaffolder.run.{run.status}",
        target=f"run:{run.uid}",
        after={
            "template": run.template_ref,
            "dry_run": run.dry_run,
            "error": error[:500],
            "links": (output or {}).get("links", []),
        },
        outcome="success" if ok else "failure",
    )
    secrets.discard(run.uid)
    # The run's user and team, not the worker's: the event is about the run.
    usage.record(EventType.TEMPLATE_RUN_SUCCEEDED if ok else EventType.TEMPLATE_RUN_FAILED,
                   user=run.created_by_id, team=run.owner_team_id, subject=run.template_ref,
                   value=run.duration,
                   client=Client.SYSTEM, data={"dry_run": run.dry_run})
    return run


def published_steps(run: Run) -> dict[int, dict]:
    """The run's done steps whose action publishes, {index: recorded output}: a resume or a retry
    keeps them and does not publish again."""
    from .actions import ACTIONS, resolve_action

    return {
        step.index: step.output
        for step in RunStep.objects.filter(run=run, status=StepStatus.DONE)
        if (spec := ACTIONS.get(resolve_action(step.action) or "")) is not None and spec.publishes
    }


class RetryRefused(Exception):
    """A run that cannot be retried; the message says why."""


@transaction.atomic
def run_retry(*, run: Run, actor) -> Run:
    """Run a failed run again, as the same run: steps that already published (a repository, a catalog
    registration) are kept and not repeated, everything else runs again in a fresh workspace."""
    if not permissions.may_retry_run(actor, run):
        raise PermissionDenied("Only the run's creator or a member of its team may retry it.")
    current = Run.objects.select_for_update().get(pk=run.pk)
    if current.status != RunStatus.FAILED:
        raise RetryRefused(f"Only a failed run can be retried; this one is {current.status}.")
    if current.secret_names and not secrets.load(current.uid):
        raise RetryRefused(
            "This run used secrets, which are deleted when a run ends; start a new run and enter them again."
        )
    Run.objects.filter(pk=current.pk).update(
        status=RunStatus.QUEUED, error="", finished_at=None, heartbeat_at=None, attempts=0, task_id="",
        output={}, files=[], cancel_requested_at=None, cancelled_by="",
    )
    steps_reset(current, keep=list(published_steps(current)))
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "someone"
    RunLog.objects.create(run=current, level="warning", message=f"Retried by {who} after: {current.error}"[:10_000])
    audit_record(
        actor=actor,
        action="scaffolder.run.retry",
        target=f"run:{current.uid}",
        before={"status": current.status, "error": current.error[:500]},
        after={"status": RunStatus.QUEUED},
    )
    current.refresh_from_db()
    transaction.on_commit(lambda: enqueue(current))
    return current


class CancelRefused(Exception):
    """A run that cannot be cancelled (it has finished); the message says why, `state` is its status."""

    def __init__(self, message: str, state: str = "") -> None:
        super().__init__(message)
        self.state = state


def run_cancel(*, run: Run, actor) -> Run:
    """Cancel a run: a queued one ends "cancelled" at once and never starts (the task's claim takes only
    queued or running runs); a running one is asked to stop, and its executor ends it "cancelled" before
    its next step (the step under way finishes: a half-done publish is worse than a finished one).
    Asking twice is one request. Compare-and-set on the status, so a worker claiming the run at the same
    moment sees either a cancelled run or a cancel request, never neither."""
    if not permissions.may_cancel_run(actor, run):
        raise PermissionDenied("Only the run's creator or a platform admin may cancel it.")
    who = actor.get_username() if getattr(actor, "is_authenticated", False) else "someone"
    for _ in range(3):  # the status may move under us (claimed, requeued by the reaper): read it again
        now = timezone.now()
        with transaction.atomic():
            if Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(
                status=RunStatus.CANCELLED, cancel_requested_at=now, cancelled_by=who, finished_at=now, error="",
            ):
                current = Run.objects.get(pk=run.pk)
                RunStep.objects.filter(run=current, status=StepStatus.PENDING).update(
                    status=StepStatus.SKIPPED, message="not run: the run was cancelled")
                RunLog.objects.create(run=current, level="warning", message=f"Cancelled by {who} before it started.")
                _audit_cancel(current, actor, before=RunStatus.QUEUED, after=RunStatus.CANCELLED)
                secrets.discard(current.uid)
                _record_cancelled(current)
                return current
            if Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING, cancel_requested_at__isnull=True).update(
                cancel_requested_at=now, cancelled_by=who,
            ):
                current = Run.objects.get(pk=run.pk)
                RunLog.objects.create(run=current, level="warning",
                                      message=f"Cancel requested by {who}: the run stops before its next step.")
                _audit_cancel(current, actor, before=RunStatus.RUNNING, after=RunStatus.RUNNING)
                return current
        current = Run.objects.get(pk=run.pk)
        if current.finished:
            raise CancelRefused(
                f"This run has already finished ({current.status}); there is nothing to cancel.", current.status)
        if current.cancelling:
            return current
    raise CancelRefused("The run changed state while it was being cancelled; try again.", current.status)


def _record_cancelled(run: Run) -> None:
    """The run's usage outcome when it ends cancelled, said once: by whichever write ended it (the queued
    cancel's compare-and-set, or run_finish, which ends a run only once), so a started run always has an
    outcome. Its user and team, as for the other outcomes; value: how long it ran (None if it never did)."""
    usage.record(EventType.TEMPLATE_RUN_CANCELLED, user=run.created_by_id, team=run.owner_team_id,
                 subject=run.template_ref, value=run.duration, client=Client.SYSTEM, data={"dry_run": run.dry_run})


def _audit_cancel(run: Run, actor, *, before: str, after: str) -> None:
    audit_record(
        actor=actor,
        action="scaffolder.run.cancel",
        target=f"run:{run.uid}",
        before={"status": before},
        after={"status": after, "cancelRequested": True, "template": run.template_ref},
    )


def runs_reap(*, now=None) -> dict:
    """Runs whose worker stopped heartbeating: requeue (resume) while attempts remain, else fail them
    with a message that says what happened; one that was asked to stop ends cancelled instead. Queued
    runs that nobody picked up are requeued too."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=conf.stale_seconds())
    resumed, failed, cancelled = [], [], []
    # Read before the lost runs are put back to queued below: those are queued once, not twice.
    forgotten = list(Run.objects.filter(
        status=RunStatus.QUEUED, created_at__lt=now - timedelta(seconds=max(conf.stale_seconds(), 60))
    ))
    lost = Run.objects.filter(
        Q(status=RunStatus.RUNNING) & (Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True))
    )
    for run in lost:
        if run.cancel_requested_at is not None:  # its worker is gone: nothing more runs, as asked
            run_log(run, f"Cancelled by {run.cancelled_by}.", level="warning")
            run_finish(run, ok=False, cancelled=True)
            cancelled.append(str(run.uid))
        elif run.attempts >= conf.max_attempts():
            run_log(
                run, f"The worker running this run was lost {run.attempts} time(s); giving up.", level="error"
            )
            run_finish(
                run,
                ok=False,
                error=(
                    f"The worker executing this run stopped (attempt {run.attempts} of {conf.max_attempts()}); "
                    "the run was not resumed again. Nothing more was published. Start a new run."
                ),
            )
            failed.append(str(run.uid))
        else:
            # Back to queued (only if still stale: a live worker may have just beaten), so whichever
            # worker receives the message claims it, whatever its own idea of "stale" is.
            requeued = (
                Run.objects.filter(pk=run.pk, status=RunStatus.RUNNING)
                .filter(Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True))
                .update(status=RunStatus.QUEUED)
            )
            if requeued:
                run_log(
                    run,
                    "The worker executing this run stopped responding; resuming on another worker.",
                    level="warning",
                )
                enqueue(run)
                resumed.append(str(run.uid))
    for run in forgotten:
        if run.attempts >= conf.max_attempts():
            run_finish(run, ok=False, error="The run was queued but never started; giving up.")
            failed.append(str(run.uid))
        else:
            enqueue(run)
            resumed.append(str(run.uid))
    # "cancelled" only when there are some: callers (and the beat's log line) read the two lists.
    return {"resumed": resumed, "failed": failed, **({"cancelled": cancelled} if cancelled else {})}
