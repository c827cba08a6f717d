"""Executes one run: preflight checks, then each step in order with its status and logs, then the
output links. Owns the run's time limit (a SIGALRM deadline), the workspace lifetime and the dry run."""

from __future__ import annotations

import contextlib
import errno
import shutil
import signal
import threading
import time
from typing import Any

from django.db import close_old_connections, connection
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from . import conf, secrets, services
from .actions import ACTIONS, ActionContext, ActionError, Workspace
from .expressions import ExpressionError, render_value, truthy
from .models import Run, StepStatus
from .templates import Template, from_data


class RunTimeout(BaseException):  # noqa: N818 - BaseException so that no `except Exception` in an action swallows it
    """The run exceeded PLINTH_SCAFFOLDER_RUN_TIME_LIMIT."""


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise RunTimeout in this thread after `seconds` (only the main thread can receive signals;
    Celery's prefork pool runs tasks in the main thread of each child)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expired(signum, frame):
        raise RunTimeout()

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def heartbeat(run_id: int, attempt: int | None = None, every: float = 2.0):
    """Keep Run.heartbeat_at fresh while the run executes, so the reaper can tell a lost worker."""
    stop = threading.Event()

    def beat():
        while not stop.wait(every):
            try:
                close_old_connections()
                services.run_heartbeat(run_id, attempt)
            except Exception:  # noqa: S110 - the next beat retries; a failed beat must not kill the run
                pass
        connection.close()

    thread = threading.Thread(target=beat, name=f"run-heartbeat-{run_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def preflight(template: Template) -> list[str]:
    """Problems that make a run impossible, found before anything is written."""
    problems = list(template.problems)
    unsupported = template.unsupported_actions
    if unsupported:
        problems.append(
            "This template uses action(s) Plinth does not support: "
            + ", ".join(unsupported)
            + f". Supported: {', '.join(sorted(ACTIONS))}."
        )
    for step in template.steps:
        spec = ACTIONS.get(step.resolved_action or "")
        if spec is None:
            continue
        missing = [name for name in spec.required if name not in step.input]
        if missing:
            problems.append(
                f"Step '{step.id}' ({step.action}) is missing required input(s): {', '.join(missing)}."
            )
    return problems


def _user_context(user) -> dict:
    if user is None:
        return {}
    return {
        "ref": f"user:default/{user.get_username()}",
        "entity": {
            "metadata": {"name": user.get_username(), "title": user.get_full_name()},
            "spec": {"profile": {"displayName": user.get_full_name(), "email": user.email}},
        },
    }


def entity_url(ref: str, *, docs: bool = False) -> str:
    """The catalog page of an entity ref (or its docs site, for links with `icon: docs`)."""
    kind, _, rest = str(ref).partition(":")
    namespace, _, name = rest.rpartition("/")
    args = [kind.lower(), namespace or "default", name]
    for view in (["techdocs:site"] if docs else []) + ["catalog:entity-detail"]:
        try:
            return reverse(view, args=args)
        except NoReverseMatch:
            continue
    return ""


def output_links(template: Template, context: dict, *, dry_run: bool = False) -> dict:
    links, text = [], []
    for raw in template.output.get("links") or []:
        try:
            link = render_value(raw, context, name="output.links")
        except ExpressionError:
            continue
        url = link.get("url") or ""
        if dry_run and link.get("entityRef"):
            continue  # nothing was registered: the catalog page would not exist
        if link.get("entityRef"):
            url = entity_url(link["entityRef"], docs=link.get("icon") == "docs") or url
        if url and str(url).strip():
            links.append(
                {
                    "title": str(link.get("title") or url),
                    "url": str(url),
                    "icon": str(link.get("icon") or ""),
                    "entityRef": str(link.get("entityRef") or ""),
                }
            )
    for raw in template.output.get("text") or []:
        with contextlib.suppress(ExpressionError):
            item = render_value(raw, context, name="output.text")
            text.append({"title": str(item.get("title") or ""), "content": str(item.get("content") or "")})
    return {"links": links, "text": text}


def _preview(workspace: Workspace, secret_values: dict) -> list[dict]:
    limit = conf.dry_run_preview_bytes()
    files = []
    for rel, path in workspace.files():
        raw = path.read_bytes()
        try:
            content, binary = raw[:limit].decode("utf-8"), False
        except UnicodeDecodeError:
            content, binary = "", True
        files.append(
            {
                "path": rel,
                "size": len(raw),
                "content": secrets.redact(content, secret_values),
                "truncated": len(raw) > limit,
                "binary": binary,
            }
        )
    return files


def execute(run: Run) -> Run:
    """Execute a claimed run to the end. Never raises for template problems: they fail the run."""
    template = from_data(run.template, ref=run.template_ref, source=run.template_source)
    secret_values = secrets.load(run.uid)
    user = run.created_by

    def log(message: str, *, step_id: str = "", level: str = "info") -> None:
        services.run_log(run, secrets.redact(message, secret_values), step_id=step_id, level=level)

    kept = services.published_steps(run)
    if run.attempts > 1:
        log(
            f"Resuming (attempt {run.attempts}): the previous attempt was interrupted (its worker was lost, or "
            "the database failed). Starting again in a fresh workspace; steps that already published are not "
            "repeated.",
            level="warning",
        )
    if run.attempts > 1 or run.steps.exclude(status=StepStatus.PENDING).exists():
        services.steps_reset(run, keep=list(kept))
    problems = preflight(template)
    if problems:
        for problem in problems:
            log(problem, level="error")
        return services.run_finish(run, ok=False, error=" ".join(problems))
    if run.secret_names and not secret_values:
        log(
            "The secrets entered in the form are no longer available (expired or already used).",
            level="error",
        )
        return services.run_finish(run, ok=False, error="The secrets for this run are gone; start a new run.")

    # One folder per attempt: a superseded attempt that is still cleaning up never touches the next one's.
    workspace = Workspace(conf.workspace_root() / f"{run.uid}-{run.attempts}")
    shutil.rmtree(workspace.root, ignore_errors=True)
    workspace.root.mkdir(parents=True)
    parameters = {**run.parameters, **secret_values}
    context: dict[str, Any] = {
        "parameters": parameters,
        "secrets": secret_values,
        "steps": {},
        "user": _user_context(user),
    }
    state: dict = {}
    current = {"step": None}
    started = time.monotonic()
    limit = conf.run_time_limit()
    log(f"Run of {template.title or template.ref}{' (dry run)' if run.dry_run else ''} started.")
    try:
        with heartbeat(run.pk, run.attempts), deadline(limit):
            for step in template.steps:
                current["step"] = step
                if not services.run_owned(run):
                    raise _Superseded()
                if step.index in kept and _reuse(step, kept[step.index], context, state, log):
                    continue
                _run_step(run, template, step, context, workspace, user, secret_values, state, log)
        output = output_links(template, context, dry_run=run.dry_run)
        files = _preview(workspace, secret_values) if run.dry_run else []
        log(f"All steps finished in {time.monotonic() - started:.2f} s.")  # the header's time also counts the start and the finish
        return services.run_finish(run, ok=True, output=output, files=files)
    except RunTimeout:
        step = current["step"]
        where = f" during step '{step.id}'" if step else ""
        message = f"The run exceeded its time limit of {limit} s{where} and was stopped. Nothing more was published."
        if step is not None:
            services.step_update(
                run,
                step.index,
                status=StepStatus.FAILED,
                message="stopped: time limit",
                finished_at=timezone.now(),
            )
        log(message, level="error")
        return services.run_finish(run, ok=False, error=message)
    except _StepFailed as failure:
        return services.run_finish(run, ok=False, error=str(failure))
    except _Superseded:
        log(f"Attempt {run.attempts} stops here: another attempt took this run over.", level="warning")
        run.refresh_from_db()
        return run
    finally:
        shutil.rmtree(workspace.root, ignore_errors=True)
        shutil.rmtree(workspace.root.parent / f"{workspace.root.name}.git", ignore_errors=True)


def _reuse(step, output: dict, context: dict, state: dict, log) -> bool:
    """Take a published step's recorded output instead of publishing again, if what it made is still
    there (the action's `resume` checks); False: run the step again."""
    spec = ACTIONS[step.resolved_action]
    if spec.resume is not None and not spec.resume(output, state):
        log(f"What step '{step.name}' published earlier is gone; running it again.", step_id=step.id)
        return False
    context["steps"][step.id] = {"output": output}
    log(f"Step '{step.name}' published in an earlier attempt; not repeated.", step_id=step.id)
    return True


class _Superseded(Exception):
    """Another attempt claimed the run (this worker was presumed lost): stop without finishing it."""


def _failure(exc: Exception) -> str:
    """How a step failed, as the user should read it: a full disk is not a bug."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        where = f" while writing {exc.filename}" if exc.filename else ""
        return f"failed: the disk is full ({exc.strerror}){where}. Free space, then retry the run."
    return f"failed unexpectedly: {type(exc).__name__}: {exc}"


class _StepFailed(Exception):
    pass


def _run_step(run, template, step, context, workspace, user, secret_values, state, log) -> None:
    spec = ACTIONS[step.resolved_action]
    now = timezone.now()
    try:
        if step.condition is not None and not truthy(step.condition, context):
            services.step_update(
                run,
                step.index,
                status=StepStatus.SKIPPED,
                message="condition was false",
                started_at=now,
                finished_at=now,
            )
            log(f"Skipped '{step.name}': its condition is false.", step_id=step.id)
            context["steps"][step.id] = {"output": {}}
            return
        services.step_update(run, step.index, status=StepStatus.RUNNING, started_at=now)
        label = step.action if step.action == spec.name else f"{step.action} → {spec.name}"
        log(f"Step '{step.name}' ({label}) started.", step_id=step.id)
        inputs = render_value(step.input, context, name=f"steps.{step.id}.input")
        missing = [name for name in spec.required if inputs.get(name) in (None, "")]
        if missing:
            raise ActionError(f"missing required input(s): {', '.join(missing)}")
        if run.dry_run and spec.publishes:
            log(f"Dry run: '{spec.name}' skipped; nothing is published or registered.", step_id=step.id)
            output = {"dryRun": True}
            services.step_update(
                run,
                step.index,
                status=StepStatus.SKIPPED,
                message="dry run: not published",
                finished_at=timezone.now(),
            )
            context["steps"][step.id] = {"output": output}
            return
        ctx = ActionContext(
            run=run,
            step=step,
            template=template,
            workspace=workspace,
            input=inputs,
            dry_run=run.dry_run,
            user=user,
            secrets=secret_values,
            state=state,
            log=lambda m: log(m, step_id=step.id),
        )
        output = spec.func(ctx) or {}
    except (ActionError, ExpressionError) as exc:
        message = f"Step '{step.id}' ({step.action}) failed: {exc}"
        services.step_update(
            run,
            step.index,
            status=StepStatus.FAILED,
            message=secrets.redact(str(exc), secret_values),
            finished_at=timezone.now(),
        )
        log(message, step_id=step.id, level="error")
        raise _StepFailed(secrets.redact(message, secret_values)) from exc
    except Exception as exc:  # an unexpected bug: fail the run clearly rather than leave it "running"
        message = f"Step '{step.id}' ({step.action}) {_failure(exc)}"
        services.step_update(
            run,
            step.index,
            status=StepStatus.FAILED,
            message=secrets.redact(message, secret_values),
            finished_at=timezone.now(),
        )
        log(message, step_id=step.id, level="error")
        raise _StepFailed(secrets.redact(message, secret_values)) from exc
    context["steps"][step.id] = {"output": output}
    services.step_update(run, step.index, status=StepStatus.DONE, output=output, finished_at=timezone.now())
    log(f"Step '{step.name}' done.", step_id=step.id)
