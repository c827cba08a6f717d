"""OpenAPI descriptions of the lineage graph's answers (drf-spectacular only: the API builds its bodies
itself, in `portal.lineage.graph`)."""

from __future__ import annotations

from rest_framework import serializers

from portal.core.api import PageInfoSerializer


class LineageEdgeSerializer(serializers.Serializer):
    origin = serializers.CharField(help_text="Node id the data flows from.")
    destination = serializers.CharField(help_text="Node id the data flows to.")


class LineageNodeSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.ChoiceField(choices=["DATASET", "JOB", "ENTITY", "RUN", "VERSION", "DATASET_FIELD"])
    data = serializers.DictField(help_text=(
        "name, namespace, kind, title, ref and url of the catalog entity (when mapped), entity (its node id), "
        "team, lifecycle, lastRun {state, startedAt, endedAt, durationSeconds}, schema [{name, type}], "
        "dataQualityMetrics, hasColumnLineage, description; deployments add status, environment, endpoint; "
        "versions add version, aliases; runs add runName, experimentId."))
    inEdges = LineageEdgeSerializer(many=True)
    outEdges = LineageEdgeSerializer(many=True)


class LineageGraphSerializer(serializers.Serializer):
    graph = LineageNodeSerializer(many=True)
    hidden = serializers.IntegerField(help_text="Nodes left out because you may not see them.")
    root = serializers.CharField(help_text="The node asked for (its canonical id).")
    depth = serializers.IntegerField()
    direction = serializers.CharField()
    truncated = serializers.BooleanField(help_text="The walk met more edges than the cap and was cut.")


class LineageColumnGraphSerializer(serializers.Serializer):
    graph = LineageNodeSerializer(many=True, help_text="DATASET_FIELD nodes: data has namespace, name, field, "
                                                     "fieldType, dataset, ref, url, team, transformations.")
    hidden = serializers.IntegerField(help_text="Fields you may not see next to the fields shown (not those "
                                                "behind them).")
    root = serializers.CharField()
    truncated = serializers.BooleanField(help_text="The walk met more field edges than the cap and was cut.")


class LineageImpactItemSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    kind = serializers.CharField()
    name = serializers.CharField()
    title = serializers.CharField()
    ref = serializers.CharField(allow_null=True)
    url = serializers.CharField(allow_null=True)
    team = serializers.CharField(allow_null=True)
    lifecycle = serializers.CharField()
    distance = serializers.IntegerField(help_text="Edges from the node asked about.")
    critical = serializers.BooleanField()
    reason = serializers.CharField(help_text="`production model`, `live deployment` or empty.")


class LineageImpactGroupSerializer(serializers.Serializer):
    kind = serializers.CharField()
    team = serializers.CharField(allow_null=True)
    critical = serializers.BooleanField()
    items = LineageImpactItemSerializer(many=True)


class LineageImpactSerializer(serializers.Serializer):
    root = serializers.CharField()
    total = serializers.IntegerField()
    hidden = serializers.IntegerField()
    depth = serializers.IntegerField()
    truncated = serializers.BooleanField()
    critical = LineageImpactItemSerializer(many=True)
    groups = LineageImpactGroupSerializer(many=True)


GRAPH_EXAMPLE = {
    "graph": [
        {"id": "dataset:postgres://db.internal:5432:shop.public.orders", "type": "DATASET",
         "data": {"name": "shop.public.orders", "namespace": "postgres://db.internal:5432", "kind": "dataset",
                  "title": "Orders", "ref": "dataset:default/orders", "url": "/catalog/dataset/default/orders/",
                  "entity": "entity:dataset:default:orders", "team": "data-eng", "lifecycle": "production",
                  "lastRun": {"state": "COMPLETE", "startedAt": "2026-12-01T10:00:00+00:00",
                              "endedAt": "2026-12-01T10:04:00+00:00", "durationSeconds": 240.0},
                  "schema": [{"name": "id", "type": "bigint"}], "dataQualityMetrics": None,
                  "hasColumnLineage": True, "description": ""},
         "inEdges": [], "outEdges": [{"origin": "dataset:postgres://db.internal:5432:shop.public.orders",
                                      "destination": "job:airflow:etl.orders_daily"}]},
        {"id": "job:airflow:etl.orders_daily", "type": "JOB",
         "data": {"name": "etl.orders_daily", "namespace": "airflow", "kind": "job", "title": "etl.orders_daily",
                  "ref": None, "url": None, "entity": None, "team": None, "lifecycle": "", "lastRun": None,
                  "schema": [], "dataQualityMetrics": None, "hasColumnLineage": False, "description": ""},
         "inEdges": [{"origin": "dataset:postgres://db.internal:5432:shop.public.orders",
                      "destination": "job:airflow:etl.orders_daily"}], "outEdges": []},
    ],
    "hidden": 1, "root": "dataset:postgres://db.internal:5432:shop.public.orders", "depth": 2,
    "direction": "both", "truncated": False,
}


class LineageRunSerializer(serializers.Serializer):
    runId = serializers.UUIDField()
    state = serializers.ChoiceField(choices=["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"])
    startedAt = serializers.DateTimeField(allow_null=True, help_text="The START event's time (null: none came).")
    endedAt = serializers.DateTimeField(allow_null=True, help_text="The COMPLETE, FAIL or ABORT event's time.")
    durationSeconds = serializers.FloatField(allow_null=True)
    errorMessage = serializers.CharField(allow_null=True, help_text="The errorMessage run facet's message.")
    parentRunId = serializers.UUIDField(allow_null=True)


class LineageRunsSerializer(serializers.Serializer):
    job = serializers.CharField(help_text="The job's node id.")
    items = LineageRunSerializer(many=True)
    totalItems = serializers.IntegerField(help_text="Runs of the job in all.")
    pageInfo = PageInfoSerializer()
