"""The shape the search API answers with, as the OpenAPI schema documents it (never used to serialise:
`api.py` builds its body itself; the fuzz run in tests/api checks that the two agree)."""

from __future__ import annotations

from rest_framework import serializers

from portal.core.api import FacetValueSerializer, PageInfoSerializer


class ParsedQuerySerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    terms = serializers.ListField(child=serializers.CharField())
    phrases = serializers.ListField(child=serializers.CharField())
    excluded = serializers.ListField(child=serializers.CharField())
    filters = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    excludedFilters = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    correctedQuery = serializers.CharField(allow_blank=True, help_text="The query that was run instead, if any.")
    notes = serializers.ListField(child=serializers.CharField())


class ScoreExplainSerializer(serializers.Serializer):
    """score = (1 + sum of evidence + proximity + nameSignal) × (quality + popularity) × personal."""

    score = serializers.FloatField()
    evidence = serializers.DictField(
        child=serializers.FloatField(), help_text="Per field: name, title, tags, owner, description, body."
    )
    proximity = serializers.FloatField()
    nameSignal = serializers.FloatField()
    quality = serializers.FloatField()
    popularity = serializers.FloatField()
    personal = serializers.FloatField()


class RankingSerializer(serializers.Serializer):
    exact = serializers.BooleanField(help_text="Every document that could rank on this page was scored.")
    provenHits = serializers.IntegerField(help_text="How many of the first items provably hold their place.")
    candidates = serializers.IntegerField(help_text="Documents scored.")
    bound = serializers.FloatField(allow_null=True, help_text="The most a document not scored can score.")


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
    explain = ScoreExplainSerializer(required=False, help_text="With `explain=1`, for platform admins only.")


class SearchResultsSerializer(serializers.Serializer):
    query = ParsedQuerySerializer()
    items = SearchHitSerializer(many=True)
    facets = serializers.DictField(child=FacetValueSerializer(many=True))
    totalItems = serializers.IntegerField()
    totalIsLowerBound = serializers.BooleanField()
    pageInfo = PageInfoSerializer()
    tookMs = serializers.FloatField()
    ranking = RankingSerializer(required=False, help_text="With `explain=1`, for platform admins only.")
