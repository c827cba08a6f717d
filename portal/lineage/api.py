"""`POST /api/v1/lineage`: OpenLineage events in, as Marquez takes them."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import BaseParser
from rest_framework.response import Response

from portal.core.api import error_responses
from portal.core.limits import body_limit

from . import events, services
from . import spec as spec_module
from .conf import max_body_bytes


class RawJSONParser(BaseParser):
    """The body is read as bytes by the view: its nesting is counted before any parser recurses."""

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        return None


class IngestSerializer(serializers.Serializer):
    received = serializers.IntegerField(help_text="Events in the request.")
    stored = serializers.IntegerField(help_text="Events stored now.")
    duplicates = serializers.IntegerField(help_text="Events stored before (same runId, eventType, eventTime).")
    runs = serializers.ListField(child=serializers.CharField(), help_text="The runIds the events touched.")


EXAMPLE = {"eventType": "START", "eventTime": "2026-12-01T10:00:00Z",
           "producer": "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/client/python",
           "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
           "run": {"runId": "0193a5a4-8b7e-7c1e-9a37-5f7a1d2c3b4a"},
           "job": {"namespace": "airflow", "name": "etl.orders_daily"},
           "inputs": [{"namespace": "postgres://db.internal:5432", "name": "shop.public.orders"}],
           "outputs": [{"namespace": "s3://lake", "name": "marts/orders_daily"}]}


@extend_schema(
    operation_id="lineage_create",
    summary="Send OpenLineage events",
    description=(
        "One OpenLineage event (RunEvent, DatasetEvent or JobEvent, spec 2-0-x) or a JSON array of them, "
        "checked against the OpenLineage JSON Schema and its standard facets. A batch is atomic: one bad "
        "event refuses the whole batch (400 naming `[index].field`) and nothing is stored. Events are "
        "idempotent by (runId, eventType, eventTime): a resend is counted in `duplicates`. Credentials in "
        "URLs (`postgres://user:secret@host`) are stripped before anything is stored. Needs the member role "
        "(or higher) in a team. 503 when the server has no OpenLineage spec to check against."),
    request=OpenApiTypes.OBJECT,
    responses={201: OpenApiResponse(IngestSerializer, description="Stored (or already stored)."),
               **error_responses(403, 503)},
    examples=[OpenApiExample("A START event", request_only=True, value=EXAMPLE)],
)
@body_limit(max_body_bytes)
@api_view(["POST"])
@parser_classes([RawJSONParser])
def lineage_create(request):
    try:
        spec = spec_module.load()
    except spec_module.SpecMissing as exc:
        return Response({"error": {"status": 503, "message": str(exc)}}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
    try:
        items, batch, facts = events.parse_body(request._request.body)
        checked = []
        for index, item in enumerate(items):
            try:
                checked.append(events.check(item, spec, facts))
            except events.EventInvalid as exc:
                raise exc.at(f"[{index}]") if batch else exc from None
    except events.EventInvalid as exc:
        message = str(exc)
        if batch_index := _index(exc.path):
            message += f" (event {batch_index} of the batch; nothing of the batch was stored)"
        return Response({"error": {"status": 400, "message": message, "details": {exc.path or "body": [exc.message]}}},
                        status=status.HTTP_400_BAD_REQUEST)
    result = services.lineage_ingest(events=checked, actor=request.user)
    return Response(result.as_dict(), status=status.HTTP_201_CREATED)


def _index(path: str) -> str | None:
    if path.startswith("["):
        return path[1:path.index("]")]
    return None
