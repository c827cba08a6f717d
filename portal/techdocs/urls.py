from django.urls import path

from . import views

app_name = "techdocs"
urlpatterns = [
    path("", views.index, name="index"),
    path("<str:kind>/<str:namespace>/<str:name>/", views.page, name="site"),
    path("<str:kind>/<str:namespace>/<str:name>/_rebuild/", views.rebuild, name="rebuild"),
    path("<str:kind>/<str:namespace>/<str:name>/_assets/<path:path>", views.asset, name="asset"),
    path("<str:kind>/<str:namespace>/<str:name>/_definition-source/", views.definition_source,
         name="definition-source"),
    path("<str:kind>/<str:namespace>/<str:name>/<path:path>", views.page, name="page"),
]
