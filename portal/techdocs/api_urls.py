from django.urls import path

from . import api

urlpatterns = [
    path("techdocs/sites", api.site_list, name="techdocs-api-sites"),
    path("techdocs/sites/<str:kind>/<str:namespace>/<str:name>", api.site_detail, name="techdocs-api-site"),
    path("techdocs/sites/<str:kind>/<str:namespace>/<str:name>/page", api.page_detail, name="techdocs-api-page"),
    path("techdocs/sites/<str:kind>/<str:namespace>/<str:name>/build", api.site_build, name="techdocs-api-build"),
    path("techdocs/definitions/<str:kind>/<str:namespace>/<str:name>", api.definition,
         name="techdocs-api-definition"),
    path("techdocs/model-cards/<str:namespace>/<str:name>", api.model_card, name="techdocs-api-model-card"),
]
