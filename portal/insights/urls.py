from django.urls import path

from . import canvas_views, views

app_name = "insights"
urlpatterns = [
    path("", views.dashboard, {"slug": "overview"}, name="overview"),
    path("active-users/", views.dashboard, {"slug": "active-users"}, name="active-users"),
    path("funnel/", views.dashboard, {"slug": "funnel"}, name="funnel"),
    path("usage/", views.dashboard, {"slug": "usage"}, name="usage"),
    path("searches/", views.dashboard, {"slug": "searches"}, name="searches"),
    path("governance/", views.dashboard, {"slug": "governance"}, name="governance"),
    path("catalog-health/", views.dashboard, {"slug": "catalog-health"}, name="catalog-health"),
    path("canvas/", canvas_views.canvas_page, name="canvas"),
    path("canvas.pdf", canvas_views.canvas_pdf, name="canvas-pdf"),
]
