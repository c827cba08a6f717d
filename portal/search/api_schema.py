"""The shape the search API answers with, as the OpenAPI schema documents it (never used to serialise:
`api.py` builds its body itself; the fuzz run in tests/api checks that the two agree)."""

from __future__ import annotations

from rest_framework import serializers

from catalog.api_schema import FacetValueSerializer, PageInfoSerializer


class ParsedQuerySerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    terms = serializers.ListField(child=serializers.CharField())
    phrases = serializers.ListField(child=serializers.CharField())
    excluded = serializers.ListField(child=serializers.CharField())
    filters = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    excludedFilters = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    correctedQuery = serializers.CharField(allow_blank=True, help_text="The query that was run instead, if any.")
    notes = serializers.ListField(child=serializers.CharField())


class SearchHitSerializer(serializers.Serializer):
    key = serializers.CharField()
    kind = serializers.CharField()
    name = serializers.CharField()
    title = serializers.CharField(allow_blank=True)
    owner = serializers.CharField(allow_blank=True)
    lifecycle = serializers.CharField(allow_blank=True)
    type = serializers.CharField(allow_blank=True)
    tags = serializers.ListField(child=serializers.CharField())
    visibility = serializers.CharField()
    url = serializers.CharField()
    snippet = serializers.CharField(allow_blank=True, help_text="HTML: escaped, with `<mark>` around matches.")


class SearchResultsSerializer(serializers.Serializer):
    query = ParsedQuerySerializer()
    items = SearchHitSerializer(many=True)
    facets = serializers.DictField(child=FacetValueSerializer(many=True))
    totalItems = serializers.IntegerField()
    totalIsLowerBound = serializers.BooleanField()
    pageInfo = PageInfoSerializer()
    tookMs = serializers.FloatField()
