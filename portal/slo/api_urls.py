from django.urls import path

from . import api

urlpatterns = [
    path("slos", api.slo_list, name="slo-api-list"),
    path("entities/by-name/<str:kind>/<str:namespace>/<str:name>/slos", api.entity_slos, name="slo-api-entity"),
]
