from django.urls import path

from . import api

urlpatterns = [
    path("insights/events", api.events, name="api-insights-events"),
]
