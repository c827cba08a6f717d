"""Reads over the query log for the admin page (and, later, the insights dashboard)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Avg, Count, Max, Q
from django.utils import timezone

from .models import SearchQuery


def _recent(days: int):
    return SearchQuery.objects.filter(created_at__gte=timezone.now() - timedelta(days=days))


def top_queries(days: int = 30, limit: int = 50) -> list[dict]:
    rows = (
        _recent(days)
        .values("normalized")
        .annotate(
            searches=Count("id"),
            clicks=Count("id", filter=~Q(clicked_key="")),
            avg_results=Avg("result_count"),
            avg_ms=Avg("latency_ms"),
            last=Max("created_at"),
        )
        .order_by("-searches", "normalized")[:limit]
    )
    return list(rows)


def zero_result_queries(days: int = 30, limit: int = 50) -> list[dict]:
    rows = (
        _recent(days)
        .filter(result_count=0)
        .values("normalized")
        .annotate(searches=Count("id"), last=Max("created_at"))
        .order_by("-searches", "normalized")[:limit]
    )
    return list(rows)


def summary(days: int = 30) -> dict:
    return _recent(days).aggregate(
        searches=Count("id"),
        zero=Count("id", filter=Q(result_count=0)),
        clicks=Count("id", filter=~Q(clicked_key="")),
        avg_ms=Avg("latency_ms"),
    )
