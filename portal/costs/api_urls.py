from django.urls import path

from . import api

urlpatterns = [
    path("costs", api.cost_list, name="costs-api-list"),
    path("costs/imports", api.import_create, name="costs-api-imports"),
    path("costs/imports/<int:pk>", api.import_retrieve, name="costs-api-import"),
    path("entities/by-name/<str:kind>/<str:namespace>/<str:name>/costs", api.entity_costs, name="costs-api-entity"),
]
