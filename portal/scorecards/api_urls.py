from django.urls import path

from . import api

urlpatterns = [
    path("scorecards", api.scorecard_list, name="scorecards-api-list"),
    path("scorecards/<str:name>/results", api.scorecard_results, name="scorecards-api-results"),
    path("scorecards/<str:name>/rollup", api.scorecard_rollup, name="scorecards-api-rollup"),
    path("teams/<str:name>/operations", api.team_operations, name="teams-api-operations"),
    path("entities/by-name/<str:kind>/<str:namespace>/<str:name>/scorecards", api.entity_scorecards,
         name="scorecards-api-entity"),
]
