"""The shapes the docs API answers with, as the OpenAPI schema documents them (never used to serialise:
`api.py` builds its bodies itself; the fuzz run in tests/api checks that the two agree)."""

from __future__ import annotations

from rest_framework import serializers

from portal.core.api import PageInfoSerializer

from .models import BuildStatus


class BuildErrorSerializer(serializers.Serializer):
    path = serializers.CharField(allow_blank=True)
    message = serializers.CharField()


class SiteSerializer(serializers.Serializer):
    entityRef = serializers.CharField()
    status = serializers.ChoiceField(choices=BuildStatus.choices)
    builtAt = serializers.DateTimeField(allow_null=True)
    attemptedAt = serializers.DateTimeField(allow_null=True)
    pageCount = serializers.IntegerField()
    url = serializers.CharField()
    errors = BuildErrorSerializer(many=True)
    nav = serializers.ListField(
        child=serializers.DictField(), allow_null=True,
        help_text="`[{title, path | url, children}]`; null in lists (read one site for its navigation).",
    )


class SiteListSerializer(serializers.Serializer):
    items = SiteSerializer(many=True)
    pageInfo = PageInfoSerializer()


class PageSerializer(serializers.Serializer):
    entityRef = serializers.CharField()
    path = serializers.CharField(allow_blank=True)
    title = serializers.CharField(allow_blank=True)
    html = serializers.CharField(allow_blank=True, help_text="Sanitised HTML.")
    toc = serializers.ListField(child=serializers.DictField(), help_text="`[{level, id, name, children}]`")
    error = serializers.CharField(allow_blank=True)
    builtAt = serializers.DateTimeField(allow_null=True)


class BuildQueuedSerializer(serializers.Serializer):
    queued = serializers.CharField(help_text="The entity whose build was queued.")


class ModelCardFactsSerializer(serializers.Serializer):
    entityRef = serializers.CharField()
    present = serializers.BooleanField()
    sections = serializers.ListField(child=serializers.CharField())
    section_keys = serializers.ListField(child=serializers.CharField())
    front_matter = serializers.DictField()
    missing_sections = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField(allow_blank=True)
    built_at = serializers.DateTimeField(allow_null=True)
