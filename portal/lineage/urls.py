from django.urls import path

from . import impact, views

app_name = "lineage"

urlpatterns = [
    path("", views.graph_page, name="graph"),
    path("jobs/<str:job_id>/runs/", views.job_runs, name="job-runs"),
    path("unowned/", views.unowned, name="unowned"),
    path("unowned/claim", views.claim, name="claim"),
    path("impact/<str:kind>/<str:namespace>/<str:name>.csv", impact.impact_csv, name="impact-csv"),
]
