from django.urls import path

from . import api

urlpatterns = [
    path("deployments/events", api.deployment_events, name="deployments-api-events"),
]
