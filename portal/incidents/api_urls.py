from django.urls import path

from . import api

urlpatterns = [
    path("incidents", api.incidents, name="incidents-api-list"),
    path("incidents/alertmanager", api.alertmanager_webhook, name="incidents-api-alertmanager"),
    path("incidents/<int:pk>", api.incident, name="incidents-api-detail"),
    path("incidents/<int:pk>/status", api.set_status, name="incidents-api-status"),
    path("incidents/<int:pk>/notes", api.note, name="incidents-api-note"),
    path("incidents/<int:pk>/postmortem", api.postmortem, name="incidents-api-postmortem"),
]
