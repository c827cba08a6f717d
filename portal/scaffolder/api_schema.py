"""The shapes the scaffolder API answers with, as the OpenAPI schema documents them (never used to
serialise: `api.py` builds its bodies itself; the fuzz run in tests/api checks that the two agree)."""

from __future__ import annotations

from rest_framework import serializers

from portal.core.api import PageInfoSerializer


class TemplateSerializer(serializers.Serializer):
    ref = serializers.CharField()
    name = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    description = serializers.CharField(allow_blank=True)
    type = serializers.CharField(allow_blank=True)
    owner = serializers.CharField(allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField())
    parameters = serializers.ListField(
        child=serializers.DictField(), help_text="The form's pages: JSON Schema objects, as in the template."
    )
    runnable = serializers.BooleanField()
    unsupportedActions = serializers.ListField(child=serializers.CharField())


class TemplateListSerializer(serializers.Serializer):
    items = TemplateSerializer(many=True)
    pageInfo = PageInfoSerializer()


class RunSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    template = serializers.CharField(allow_null=True, help_text=(
        "The template's entity reference; null when the caller may not see the template (another team's "
        "private one, or one no longer in the catalog)."))
    templateHidden = serializers.BooleanField(help_text="True when `template` is null for that reason.")
    status = serializers.CharField()
    dryRun = serializers.BooleanField()
    error = serializers.CharField(allow_blank=True)
    attempts = serializers.IntegerField()
    createdAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    finishedAt = serializers.DateTimeField(allow_null=True)
    output = serializers.DictField(help_text="`{links: [...], text: [...]}` once finished.")
    url = serializers.CharField(help_text="The run's page in the portal.")


class RunStepSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    action = serializers.CharField()
    status = serializers.CharField()
    message = serializers.CharField(allow_blank=True)


class RunLogSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    step = serializers.CharField(allow_blank=True)
    level = serializers.CharField()
    message = serializers.CharField(allow_blank=True)


class RunFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    size = serializers.IntegerField()
    content = serializers.CharField(allow_blank=True)
    truncated = serializers.BooleanField()


class RunDetailSerializer(RunSerializer):
    steps = RunStepSerializer(many=True)
    log = RunLogSerializer(many=True)
    files = RunFileSerializer(many=True, required=False, help_text="Dry runs only: what would be written.")
