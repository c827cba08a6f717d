"""`plinth deployments report`: a CD pipeline says where a model version serves."""

from __future__ import annotations

import click

from .output import note, record, state

STATUSES = ["deploying", "live", "failed", "retired"]


@click.group()
def deployments():
    """Deployments of model versions: report them from CD pipelines."""


@deployments.command()
@click.argument("model")
@click.argument("version")
@click.option("--env", "environment", required=True, help="Environment, e.g. prod (one the portal knows).")
@click.option("--status", "status_", type=click.Choice(STATUSES), required=True)
@click.option("--platform", required=True, help="Serving platform, e.g. kserve, sagemaker.")
@click.option("--endpoint", help="The endpoint URL (http/https, no credentials).")
@click.option("--time", "time_", help="When it happened, ISO 8601 with offset (default: now).")
@click.option("--served-by", help="The Component or API it serves through (entity reference).")
@click.option("--idempotency-key", help="Safe to retry: the same key and event are stored once.")
def report(model, version, environment, status_, platform, endpoint, time_, served_by, idempotency_key):
    """Report that VERSION of MODEL (an entity reference or name) is --status in --env."""
    client = state().client()
    result = client.deployments.report(model, version, environment, status_, platform=platform, endpoint=endpoint,
                                       time=time_, served_by=served_by, idempotency_key=idempotency_key)
    record(result, [("deployment", lambda r: r.ref), ("model", lambda r: f"{r.model} v{r.version}"),
                    ("environment", lambda r: r.environment), ("status", lambda r: r.status),
                    ("endpoint", lambda r: r.endpoint or "—"), ("platform", lambda r: r.platform or "—"),
                    ("drift", lambda r: "yes: no executed approval for this environment" if r.drift else "no"),
                    ("url", lambda r: client.url + r.url)])
    if result.replayed:
        note("Already reported with this idempotency key: nothing new stored.")
    if result.drift:
        note("Compliance drift: this version serves a governed environment without an executed approval.")
