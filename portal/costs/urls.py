from django.urls import path

from . import views

app_name = "costs"

urlpatterns = [
    path("", views.index, name="index"),
    path("portfolio/", views.portfolio, name="portfolio"),
    path("imports/", views.imports, name="imports"),
    path("teams/<str:name>/", views.team, name="team"),
    path("teams/<str:name>/budget", views.budget, name="budget"),
]
