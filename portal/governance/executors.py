"""What an approved request does outside the portal's database. Each executor reads the current state
first and changes only what differs, so running it twice (a redelivered task) changes things once."""

from __future__ import annotations

from catalog import mlflow_sync
from portal.accounts.models import Team

from . import conf
from .models import ActionType, ApprovalRequest


class ExecutionError(Exception):
    """The action could not be carried out now (MLflow down, refused); the task retries."""


def run(req: ApprovalRequest) -> dict:
    try:
        if req.action == ActionType.PROMOTE_MODEL_VERSION:
            return promote_model_version(req)
        if req.action in (ActionType.MARK_PRODUCTION, ActionType.DEPRECATE, ActionType.RETIRE):
            return set_lifecycle(req)
        if not Team.objects.filter(name=req.params["team"]).exists():
            from portal.governance.services import missing_team_message

            raise ExecutionError(missing_team_message(req.params["team"]))
        return {"recorded": True}  # grant-access: the grant is written with the state change
    except ExecutionError:
        raise
    except Exception as exc:  # MlflowException, connection errors, timeouts
        raise ExecutionError(f"{type(exc).__name__}: {str(exc)[:500]}") from exc


def promote_model_version(req: ApprovalRequest) -> dict:
    client = mlflow_sync.client()
    name, alias, version = req.change["model"], req.params["alias"], req.params["version"]
    tag = conf.get("MLFLOW_REQUEST_TAG")
    model_version = client.get_model_version(name, version)  # raises when the version is gone
    current = _alias_holder(client, name, alias)
    alias_changed = current != version
    if alias_changed:
        client.set_registered_model_alias(name, alias, version)
    if (model_version.tags or {}).get(tag) != str(req.pk):
        client.set_model_version_tag(name, version, tag, str(req.pk))
    # The aliases the approvers were told this version gives up (`change.drops`, frozen at request time),
    # removed only while this version holds them: another version's challenger stays.
    dropped = []
    for other in req.change.get("drops", []):
        if _alias_holder(client, name, other) == version:
            client.delete_registered_model_alias(name, other)
            dropped.append(other)
    return {
        "model": name,
        "alias": alias,
        "from": current,
        "to": version,
        "alias_changed": alias_changed,
        "dropped": dropped,
        "tag": {tag: str(req.pk)},
    }


def _alias_holder(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def set_lifecycle(req: ApprovalRequest) -> dict:
    """Models carry the new lifecycle as registered-model tags in MLflow; other kinds have no external
    system to change: the approved, executed request is the record."""
    lifecycle = (req.change.get("lifecycle") or {}).get("to", "")
    entity = req.entity
    if entity is None or entity.kind_key != "model" or not entity.model_versions.exists():
        return {"lifecycle": lifecycle, "recorded": True}
    from portal.governance.services import _mlflow_name

    client = mlflow_sync.client()
    name = _mlflow_name(entity)
    model = client.get_registered_model(name)
    tags = model.tags or {}
    if tags.get("plinth.lifecycle") != lifecycle:
        client.set_registered_model_tag(name, "plinth.lifecycle", lifecycle)
    if tags.get(conf.get("MLFLOW_REQUEST_TAG")) != str(req.pk):
        client.set_registered_model_tag(name, conf.get("MLFLOW_REQUEST_TAG"), str(req.pk))
    return {"model": name, "lifecycle": lifecycle, "recorded": True}
