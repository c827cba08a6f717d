"""The shapes the catalog API answers with, as the OpenAPI schema documents them (never used to
serialise: `api.py` builds its bodies itself; the fuzz run in tests/api checks that the two agree)."""

from __future__ import annotations

from rest_framework import serializers

from portal.core.api import FacetValueSerializer, PageInfoSerializer


class EntityRelationSerializer(serializers.Serializer):
    type = serializers.CharField()
    targetRef = serializers.CharField()


class EntityStatusSerializer(serializers.Serializer):
    orphan = serializers.BooleanField()
    errorCount = serializers.IntegerField()
    visibility = serializers.CharField()
    url = serializers.CharField()


class EntityMetadataSerializer(serializers.Serializer):
    """The descriptor's metadata plus `uid` and `etag`; other keys (title, tags, annotations…) as written."""

    name = serializers.CharField()
    namespace = serializers.CharField(required=False)
    uid = serializers.UUIDField()
    etag = serializers.CharField()


class EntitySerializer(serializers.Serializer):
    """A descriptor as registered, with `relations` and `status` added."""

    apiVersion = serializers.CharField()
    kind = serializers.CharField()
    metadata = EntityMetadataSerializer()
    spec = serializers.DictField(required=False)
    relations = EntityRelationSerializer(many=True)
    status = EntityStatusSerializer()


class EntityPageSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=serializers.DictField(),
        help_text="Entities (see `Entity`); with `fields`, only the requested paths of each.",
    )
    totalItems = serializers.IntegerField()
    totalIsLowerBound = serializers.BooleanField(required=False, help_text="Present (true) when counting stopped.")
    pageInfo = PageInfoSerializer()


class GraphNodeSerializer(serializers.Serializer):
    ref = serializers.CharField()
    level = serializers.IntegerField()
    exists = serializers.BooleanField(help_text="False for a relation target not in the catalog.")
    kind = serializers.CharField()
    name = serializers.CharField()
    url = serializers.CharField(allow_null=True)


class GraphEdgeSerializer(serializers.Serializer):
    source = serializers.CharField()
    type = serializers.CharField()
    target = serializers.CharField()


class RelationGraphSerializer(serializers.Serializer):
    root = serializers.CharField()
    nodes = GraphNodeSerializer(many=True)
    edges = GraphEdgeSerializer(many=True)


class FacetsSerializer(serializers.Serializer):
    facets = serializers.DictField(
        child=FacetValueSerializer(many=True), help_text="Per requested facet, its values with their counts."
    )
    countedMatches = serializers.IntegerField(
        required=False, help_text="Present when the counts cover only this many of the matches."
    )


class DescriptorErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    source = serializers.CharField()
    line = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_blank=True, help_text="Dotted path of the failing field, e.g. `spec.owner`.")


class LocationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    target = serializers.CharField()
    status = serializers.CharField()
    entityCount = serializers.IntegerField()
    errorCount = serializers.IntegerField()
    refreshedAt = serializers.DateTimeField(allow_null=True)
    errors = DescriptorErrorSerializer(many=True)


class LocationListSerializer(serializers.Serializer):
    items = LocationSerializer(many=True)
    pageInfo = PageInfoSerializer()


class PlanSerializer(serializers.Serializer):
    """What reading a location did (or, in a dry run, would do)."""

    target = serializers.CharField()
    type = serializers.CharField()
    added = serializers.ListField(child=serializers.CharField())
    changed = serializers.ListField(child=serializers.CharField())
    removed = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.IntegerField()
    errors = DescriptorErrorSerializer(many=True)


class RegisteredSerializer(PlanSerializer):
    location = LocationSerializer()


class DryRunSerializer(PlanSerializer):
    dryRun = serializers.BooleanField()


class ValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    documents = serializers.IntegerField()
    errors = DescriptorErrorSerializer(many=True)


class RunInputSerializer(serializers.Serializer):
    name = serializers.CharField()
    digest = serializers.CharField()
    sourceType = serializers.CharField()
    source = serializers.CharField(help_text="The source URI, credentials removed.")
    namespace = serializers.CharField(help_text="OpenLineage namespace, e.g. s3://bucket or postgres://host:5432.")
    datasetName = serializers.CharField(help_text="OpenLineage name, e.g. path/file.parquet or db.schema.table.")
    address = serializers.CharField(help_text="Namespace and name as people read them: file:///data/x.csv, "
                                              "s3://bucket/path/file.parquet, postgres://host:5432/db.schema.table.")
    context = serializers.CharField(help_text="training, eval, … (MLflow's mlflow.data.context tag)")
    schema = serializers.ListField(child=serializers.DictField())
    entityRef = serializers.CharField(allow_null=True)
    entityUrl = serializers.CharField(allow_null=True)


class ExperimentRunSerializer(serializers.Serializer):
    version = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField())
    runId = serializers.CharField()
    experimentId = serializers.CharField()
    name = serializers.CharField()
    status = serializers.CharField()
    startedAt = serializers.DateTimeField(allow_null=True)
    endedAt = serializers.DateTimeField(allow_null=True)
    params = serializers.DictField(child=serializers.CharField())
    metrics = serializers.DictField(child=serializers.FloatField())
    history = serializers.DictField(child=serializers.ListField(child=serializers.ListField(child=serializers.FloatField())))
    tags = serializers.DictField(child=serializers.CharField())
    inputs = RunInputSerializer(many=True)


class ComparedCellSerializer(serializers.Serializer):
    version = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    delta = serializers.FloatField(allow_null=True, help_text="value − baseline's value (null for the baseline)")
    relative = serializers.FloatField(allow_null=True, help_text="delta ÷ |baseline's value|")
    verdict = serializers.ChoiceField(["better", "worse", "same"], allow_null=True)


class ComparedMetricSerializer(serializers.Serializer):
    name = serializers.CharField()
    higherIsBetter = serializers.BooleanField()
    cells = ComparedCellSerializer(many=True)


class ComparedParamSerializer(serializers.Serializer):
    name = serializers.CharField()
    values = serializers.ListField(child=serializers.CharField(allow_null=True))
    differs = serializers.BooleanField()


class ComparedVersionSerializer(serializers.Serializer):
    version = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField())
    runId = serializers.CharField()
    runName = serializers.CharField()
    inputs = RunInputSerializer(many=True)


class ComparisonSerializer(serializers.Serializer):
    model = serializers.CharField()
    baseline = serializers.CharField()
    versions = ComparedVersionSerializer(many=True)
    metrics = ComparedMetricSerializer(many=True)
    params = ComparedParamSerializer(many=True)
