from django.urls import path

from . import api

urlpatterns = [
    path("lineage", api.lineage_create, name="api-lineage"),
]
