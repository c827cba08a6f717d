from django.urls import path

from . import views

app_name = "deployments"

urlpatterns = [
    path("drift/", views.drift_list, name="drift"),
]
