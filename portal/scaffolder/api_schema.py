"""The shapes the scaffolder API answers with, as the OpenAPI schema documents them (never used to
serialise: `api.py` builds its bodies itself; the fuzz run in tests/api checks that the two agree)."""

from __future__ import annotations

from rest_framework import serializers

from portal.core.api import PageInfoSerializer

from .models import RunStatus


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
    # A string, not an enum: a `status` enum component would need an ENUM_NAME_OVERRIDES entry in the
    # settings to keep the other apps' names. The values are the model's choices, listed here.
    status = serializers.CharField(help_text=(
        f"One of {', '.join(f'`{value}`' for value in RunStatus.values)}. `succeeded`, `failed` and "
        "`cancelled` are final; a cancelled run stopped before its next step (or never started)."))
    dryRun = serializers.BooleanField()
    error = serializers.CharField(allow_blank=True)
    attempts = serializers.IntegerField()
    createdAt = serializers.DateTimeField()
    startedAt = serializers.DateTimeField(allow_null=True)
    finishedAt = serializers.DateTimeField(allow_null=True)
    output = serializers.DictField(help_text="`{links: [...], text: [...]}` once finished.")
    url = serializers.CharField(help_text="The run's page in the portal.")
    cancelRequested = serializers.BooleanField(help_text=(
        "Someone cancelled the run: a running run with it set stops before its next step."))
    cancelledBy = serializers.CharField(allow_null=True, help_text="Who cancelled the run (a user name), else null.")


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
    log = RunLogSerializer(many=True, help_text="The first `PLINTH_SCAFFOLDER_MAX_LOG_LINES` lines (2,000).")
    logTotal = serializers.IntegerField(help_text="How many lines the run's log has in all.")
    logTruncated = serializers.BooleanField(help_text="True when `log` holds only the first lines of `logTotal`.")
    files = RunFileSerializer(many=True, required=False, help_text="Dry runs only: what would be written.")
