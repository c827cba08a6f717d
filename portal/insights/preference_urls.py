"""The per-user analytics preference (the dashboards' own URLs are the insights pages')."""

from django.urls import path

from . import views

app_name = "insights-core"
urlpatterns = [
    path("accounts/analytics/", views.preferences, name="preferences"),
]
