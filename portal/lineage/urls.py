from django.urls import path

from . import views

app_name = "lineage"

urlpatterns = [
    path("", views.graph_page, name="graph"),
    path("unowned/", views.unowned, name="unowned"),
    path("unowned/claim", views.claim, name="claim"),
]
