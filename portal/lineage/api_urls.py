from django.urls import path

from . import api

urlpatterns = [
    path("lineage", api.lineage_create, name="api-lineage"),
    path("lineage/columns", api.lineage_columns, name="api-lineage-columns"),
    path("lineage/impact", api.lineage_impact, name="api-lineage-impact"),
    path("lineage/runs", api.lineage_runs, name="api-lineage-runs"),
]
