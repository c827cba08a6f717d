from django.urls import path

from . import api

urlpatterns = [
    path("scorecards", api.scorecard_list, name="scorecards-api-list"),
    path("scorecards/<str:name>/results", api.scorecard_results, name="scorecards-api-results"),
    path("entities/by-name/<str:kind>/<str:namespace>/<str:name>/scorecards", api.entity_scorecards,
         name="scorecards-api-entity"),
]
