"""Executes one run: preflight checks, then each step in order with its status and logs, then the
output links. Owns the run's time limit (a SIGALRM deadline), the workspace lifetime and the dry run."""

from __future__ import annotations

import contextlib
import errno
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.db import close_old_connections, connection
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from . import actions, conf, secrets, services
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


@dataclass(slots=True)
class _Execution:
    """What every phase of one run reads: the run, its template, its secrets, the expression context
    the steps fill in, the state actions share and the step under way (for the time limit's message)."""

    run: Run
    template: Template
    secret_values: dict
    context: dict[str, Any]
    state: dict = field(default_factory=dict)
    workspace: Workspace | None = None  # made once the run has passed its checks
    current: Any = None  # templates.Step

    @classmethod
    def of(cls, run: Run) -> _Execution:
        secret_values = secrets.load(run.uid)
        context = {"parameters": {**run.parameters, **secret_values}, "secrets": secret_values, "steps": {},
                   "user": _user_context(run.created_by)}
        return cls(run=run, template=from_data(run.template, ref=run.template_ref, source=run.template_source),
                   secret_values=secret_values, context=context)

    def redact(self, text: str) -> str:
        return secrets.redact(text, self.secret_values)

    def log(self, message: str, *, step_id: str = "", level: str = "info") -> None:
        services.run_log(self.run, self.redact(message), step_id=step_id, level=level)

    def step_update(self, step, **fields) -> None:
        services.step_update(self.run, step.index, **fields)

    def step_output(self, step, output: dict) -> None:
        self.context["steps"][step.id] = {"output": output}


def execute(run: Run) -> Run:
    """Execute a claimed run to the end. Never raises for template problems: they fail the run."""
    ex = _Execution.of(run)
    kept = services.published_steps(run)
    _resume(ex, kept)
    error = _refusal(ex)
    if error:
        return services.run_finish(run, ok=False, error=error)
    return _steps(ex, kept)


def _resume(ex: _Execution, kept: dict) -> None:
    """A run taken over from a lost attempt starts its steps again, except those that published."""
    run = ex.run
    if run.attempts > 1:
        ex.log(
            f"Resuming (attempt {run.attempts}): the previous attempt was interrupted (its worker was lost, or "
            "the database failed). Starting again in a fresh workspace; steps that already published are not "
            "repeated.",
            level="warning",
        )
    if run.attempts > 1 or run.steps.exclude(status=StepStatus.PENDING).exists():
        services.steps_reset(run, keep=list(kept))


def _refusal(ex: _Execution) -> str:
    """Why the run cannot start (logged), or "": the template's problems, or secrets that are gone."""
    problems = preflight(ex.template)
    if problems:
        for problem in problems:
            ex.log(problem, level="error")
        return " ".join(problems)
    if ex.run.secret_names and not ex.secret_values:
        ex.log("The secrets entered in the form are no longer available (expired or already used).", level="error")
        return "The secrets for this run are gone; start a new run."
    return ""


def _steps(ex: _Execution, kept: dict) -> Run:
    """Every step in order within the run's time limit, then the output links; the run finished
    either way, and its workspace gone."""
    run, template = ex.run, ex.template
    # One folder per attempt: a superseded attempt that is still cleaning up never touches the next one's.
    ex.workspace = workspace = Workspace(conf.workspace_root() / f"{run.uid}-{run.attempts}")
    shutil.rmtree(workspace.root, ignore_errors=True)
    workspace.root.mkdir(parents=True)
    started = time.monotonic()
    limit = conf.run_time_limit()
    finishing = False
    # Not the template's title or ref: the log is stored, and whoever may read it later need not be
    # allowed to see the template (made private since, or the run is another team's template run for
    # yours); the run page and the API name the template to those who may see it.
    ex.log(f"Run started{' (dry run)' if run.dry_run else ''}.")
    try:
        with heartbeat(run.pk, run.attempts), deadline(limit):
            for step in template.steps:
                ex.current = step
                owned, cancelled_by = services.run_standing(run)
                if not owned:
                    raise _Superseded()
                if cancelled_by is not None:
                    raise _Cancelled(cancelled_by)
                if step.index in kept and _reuse(ex, step, kept[step.index]):
                    continue
                _run_step(ex, step)
            # The output's links and text are template expressions too, and the preview reads every
            # file: both within the time limit, as the steps are.
            ex.current = None
            finishing = True
            output = output_links(template, ex.context, dry_run=run.dry_run)
            files = _preview(workspace, ex.secret_values) if run.dry_run else []
        ex.log(f"All steps finished in {time.monotonic() - started:.2f} s.")  # the header's time also counts the start and the finish
        return services.run_finish(run, ok=True, output=output, files=files)
    except RunTimeout:
        step = ex.current
        where = f" during step '{step.id}'" if step else " while rendering its output" if finishing else ""
        message = f"The run exceeded its time limit of {limit} s{where} and was stopped. Nothing more was published."
        if step is not None:
            ex.step_update(step, status=StepStatus.FAILED, message="stopped: time limit", finished_at=timezone.now())
        ex.log(message, level="error")
        return services.run_finish(run, ok=False, error=message)
    except _StepFailed as failure:
        return services.run_finish(run, ok=False, error=str(failure))
    except _Cancelled as cancel:
        ex.current = None
        ex.log(f"Cancelled by {cancel.who}.", level="warning")
        return services.run_finish(run, ok=False, cancelled=True)
    except _Superseded:
        ex.log(f"Attempt {run.attempts} stops here: another attempt took this run over.", level="warning")
        run.refresh_from_db()
        return run
    finally:
        shutil.rmtree(workspace.root, ignore_errors=True)
        shutil.rmtree(workspace.root.parent / f"{workspace.root.name}.git", ignore_errors=True)


def _reuse(ex: _Execution, step, output: dict) -> bool:
    """Take a published step's recorded output instead of publishing again, if what it made is still
    there (the action's `resume` checks); False: run the step again."""
    spec = ACTIONS[step.resolved_action]
    if spec.resume is not None and not spec.resume(output, ex.state):
        ex.log(f"What step '{step.name}' published earlier is gone; running it again.", step_id=step.id)
        return False
    ex.step_output(step, output)
    ex.log(f"Step '{step.name}' published in an earlier attempt; not repeated.", step_id=step.id)
    return True


class _Cancelled(Exception):
    """Someone cancelled the run (services.run_cancel): stop before the next step, end it cancelled."""

    def __init__(self, who: str) -> None:
        super().__init__(who)
        self.who = who


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


def _run_step(ex: _Execution, step) -> None:
    """One step: done with its output in the context, skipped, or failed (_StepFailed, after its
    status and log say why)."""
    try:
        output = _perform(ex, step)
    except (ActionError, ExpressionError) as exc:
        raise _step_failed(ex, step, f"Step '{step.id}' ({step.action}) failed: {exc}", shown=str(exc)) from exc
    except Exception as exc:  # an unexpected bug: fail the run clearly rather than leave it "running"
        message = f"Step '{step.id}' ({step.action}) {_failure(exc)}"
        raise _step_failed(ex, step, message, shown=message) from exc
    if output is None:
        return
    ex.step_output(step, output)
    ex.step_update(step, status=StepStatus.DONE, output=output, finished_at=timezone.now())
    ex.log(f"Step '{step.name}' done.", step_id=step.id)


def _perform(ex: _Execution, step) -> dict | None:
    """The step's action run with its rendered input: its output, or None when the step was skipped
    (its condition is false, or a dry run reaches an action that publishes), which it records."""
    now = timezone.now()
    if step.condition is not None and not truthy(step.condition, ex.context):
        ex.step_update(step, status=StepStatus.SKIPPED, message="condition was false", started_at=now, finished_at=now)
        ex.log(f"Skipped '{step.name}': its condition is false.", step_id=step.id)
        ex.step_output(step, {})
        return None
    spec = ACTIONS[step.resolved_action]
    ex.step_update(step, status=StepStatus.RUNNING, started_at=now)
    label = step.action if step.action == spec.name else f"{step.action} → {spec.name}"
    ex.log(f"Step '{step.name}' ({label}) started.", step_id=step.id)
    inputs = render_value(step.input, ex.context, name=f"steps.{step.id}.input")
    missing = [name for name in spec.required if inputs.get(name) in (None, "")]
    if missing:
        raise ActionError(f"missing required input(s): {', '.join(missing)}")
    if ex.run.dry_run and spec.publishes:
        ex.log(f"Dry run: '{spec.name}' skipped; nothing is published or registered.", step_id=step.id)
        ex.step_update(step, status=StepStatus.SKIPPED, message="dry run: not published", finished_at=timezone.now())
        ex.step_output(step, {"dryRun": True})
        return None
    ctx = ActionContext(run=ex.run, step=step, template=ex.template, workspace=ex.workspace, input=inputs,
                        dry_run=ex.run.dry_run, user=ex.run.created_by, secrets=ex.secret_values, state=ex.state,
                        log=lambda message: ex.log(message, step_id=step.id))
    if spec.name == "publish:git":
        _check_registrations(ex, step, ctx)
    return spec.func(ctx) or {}


def _check_registrations(ex: _Execution, step, ctx: ActionContext) -> None:
    """Before publish:git: the owner may be published into, and each later catalog:register step that
    will read this repository is tried now on the workspace (actions.check_registration), with its input
    rendered as if the repository existed. A step whose input depends on what is not known yet is left
    to say so when it runs."""
    owner, repo = actions.publish_target(ctx)
    output = actions.publish_output(owner, repo, str(ctx.input.get("defaultBranch") or "main"), "0" * 40)
    url = output["repoContentsUrl"]
    context = {**ex.context, "steps": {**ex.context["steps"], step.id: {"output": output}}}
    latest = True  # the repository a register step without a URL reads: until another publish:git
    for later in ex.template.steps:
        if later.index <= step.index:
            continue
        if later.resolved_action == "publish:git":
            latest = False
        if later.resolved_action != "catalog:register":
            continue
        names_one = any(later.input.get(key) for key in ("catalogInfoUrl", "repoContentsUrl"))
        if not (names_one or latest):
            continue
        try:
            if later.condition is not None and not truthy(later.condition, context):
                continue
            inputs = render_value(later.input, context, name=f"steps.{later.id}.input")
        except ExpressionError:
            continue
        actions.check_registration(ctx, later, inputs, owner=owner, repo=repo,
                                   state_url=None if names_one else url)


def _step_failed(ex: _Execution, step, message: str, *, shown: str) -> _StepFailed:
    """Mark the step failed (`shown` on its row, `message` in the log), for the run to fail with."""
    ex.step_update(step, status=StepStatus.FAILED, message=ex.redact(shown), finished_at=timezone.now())
    ex.log(message, step_id=step.id, level="error")
    return _StepFailed(ex.redact(message))
