from django.urls import path

from . import api

urlpatterns = [
    path("entities", api.entity_list, name="api-entities"),
    path("entities/export", api.entity_export, name="api-entities-export"),
    path("entities/by-name/<str:kind>/<str:namespace>/<str:name>", api.entity_by_name, name="api-entity-by-name"),
    path("entities/by-name/<str:kind>/<str:namespace>/<str:name>/relations", api.entity_relations,
         name="api-entity-relations"),
    path("entities/by-name/<str:kind>/<str:namespace>/<str:name>/versions/<str:model_version>/run", api.model_version_run,
         name="api-model-version-run"),
    path("entities/by-name/<str:kind>/<str:namespace>/<str:name>/compare", api.model_compare, name="api-model-compare"),
    path("entity-facets", api.entity_facets, name="api-entity-facets"),
    path("locations", api.locations, name="api-locations"),
    path("locations/upload", api.location_upload, name="api-locations-upload"),
    path("locations/<int:pk>", api.location_detail, name="api-location"),
    path("refresh", api.refresh, name="api-refresh"),
    path("validate-entity", api.validate, name="api-validate-entity"),
    path("webhooks/mlflow", api.mlflow_webhook, name="api-mlflow-webhook"),
]
