"""`plinth approvals request|list|show|approve|reject|withdraw|wait`."""

from __future__ import annotations

import sys

import click

from .errors import CheckFailed, InputError
from .output import note, record, state, table

# `wait` exits 0 only when the change happened (or was approved, when that is what was awaited).
SUCCESS = {"executed", "approved"}


def _show(req) -> None:
    record(req, [("id", lambda r: r.id), ("state", lambda r: f"{r.state} ({r.state_label})"),
                 ("action", lambda r: r.action), ("target", lambda r: r.target), ("params", lambda r: r.params),
                 ("requester", lambda r: r.requester), ("justification", lambda r: r.justification),
                 ("decisions", lambda r: [f"{d.user}: {d.decision}" + (f" ({d.comment})" if d.comment else "")
                                          for d in r.decisions]),
                 ("url", lambda r: state().client().url + r.url)])


def _params(pairs: tuple[str, ...]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InputError(f"--param '{pair}': expected key=value, e.g. version=3")
        out[key] = value
    return out


@click.group()
def approvals():
    """Approval requests: ask for a change, review, wait for the decision."""


@approvals.command()
@click.argument("action", type=click.Choice(["promote-model-version", "mark-production", "grant-access",
                                             "deprecate", "retire"]))
@click.argument("target")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Action parameter, e.g. version=3 alias=champion (promote), team=… purpose=… (grant-access).")
@click.option("--justification", "-j", default="", help="Why; reviewers read it.")
@click.option("--wait", "wait_", is_flag=True, help="Block until the request is decided and executed.")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds to wait at most.")
def request(action, target, params, justification, wait_, timeout):
    """Ask for ACTION on TARGET (an entity reference). Prints the request id (stdout, table output)."""
    client = state().client()
    req = client.approvals.request(action, target, params=_params(params), justification=justification)
    if not wait_:
        if state().output == "table":
            click.echo(req.id)
            note(f"Request #{req.id}: {req.state_label} — {client.url}{req.url}")
        else:
            _show(req)
        return
    _wait(client, req.id, ("executed", "rejected"), timeout)


@approvals.command("list")
@click.option("--state", "state_", help="Only this state, e.g. in-review.")
@click.option("--mine", is_flag=True, help="Only requests you submitted.")
@click.option("--awaiting", is_flag=True, help="Only requests waiting for your decision.")
@click.option("--target", help="Only requests about this entity.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="0: all.")
def list_(state_, mine, awaiting, target, limit):
    """Requests you may see, newest first."""
    rows = state().client().approvals.list(state=state_, mine=mine, awaiting=awaiting, target=target,
                                           limit=limit or None)
    table(rows, [("ID", lambda r: r.id), ("STATE", lambda r: r.state), ("ACTION", lambda r: r.action),
                 ("TARGET", lambda r: r.target), ("REQUESTER", lambda r: r.requester)])


@approvals.command()
@click.argument("request_id", type=int)
def show(request_id):
    """One request with its decisions."""
    _show(state().client().approvals.get(request_id))


@approvals.command()
@click.argument("request_id", type=int)
@click.option("--comment", "-m", default="", help="A note for the record.")
def approve(request_id, comment):
    """Approve a request routed to you."""
    _show(state().client().approvals.approve(request_id, comment=comment))


@approvals.command()
@click.argument("request_id", type=int)
@click.option("--comment", "-m", required=True, help="Why (required).")
def reject(request_id, comment):
    """Reject a request routed to you."""
    _show(state().client().approvals.reject(request_id, comment=comment))


@approvals.command()
@click.argument("request_id", type=int)
def withdraw(request_id):
    """Withdraw your own request."""
    _show(state().client().approvals.withdraw(request_id))


@approvals.command()
@click.argument("request_id", type=int)
@click.option("--until", default="executed,rejected", show_default=True,
              help="States to wait for (comma-separated); any state it cannot leave by itself also ends the wait.")
@click.option("--timeout", type=float, default=3600, show_default=True, help="Seconds to wait at most.")
def wait(request_id, until, timeout):
    """Block until the request is decided. Exit 0 when it was executed (or approved, if awaited),
    1 when it ended otherwise (rejected, blocked, expired, withdrawn…) or the wait timed out."""
    _wait(state().client(), request_id, tuple(s.strip() for s in until.split(",") if s.strip()), timeout)


def _wait(client, request_id: int, until: tuple[str, ...], timeout: float) -> None:
    with Progress(f"request #{request_id}") as progress:
        req = client.approvals.wait(request_id, until=until, timeout=timeout,
                                    on_update=lambda r: progress.update(r.state_label or r.state))
    if state().output != "table":
        _show(req)
    else:
        click.echo(req.state)
    if not (req.state == "executed" or req.state in SUCCESS and req.state in until):
        note(f"Request #{request_id} ended {req.state_label or req.state}.")
        raise CheckFailed(f"request #{request_id} is {req.state}")


class Progress:
    """Where a wait stands: a spinner on a terminal, a line per change otherwise (CI logs)."""

    def __init__(self, what: str):
        self.what, self.last, self._status = what, None, None

    def __enter__(self):
        if sys.stderr.isatty():
            from .output import console

            self._status = console(err=True).status(f"Waiting for {self.what}…")
            self._status.__enter__()
        return self

    def update(self, text: str) -> None:
        if text == self.last:
            return
        self.last = text
        if self._status is not None:
            self._status.update(f"Waiting for {self.what}: {text}")
        else:
            note(f"{self.what}: {text}")

    def __exit__(self, *exc) -> None:
        if self._status is not None:
            self._status.__exit__(*exc)
