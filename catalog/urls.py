from django.urls import path

from . import views

app_name = "catalog"
urlpatterns = [
    path("", views.entity_list, name="list"),
    path("register/", views.location_register, name="register"),
    path("locations/", views.location_list, name="locations"),
    path("locations/<int:pk>/", views.location_detail, name="location-detail"),
    path("locations/<int:pk>/refresh/", views.location_refresh, name="location-refresh"),
    path("locations/<int:pk>/unregister/", views.location_unregister, name="location-unregister"),
    path("<str:kind>/<str:namespace>/<str:name>/", views.entity_detail, name="entity-detail"),
    path("<str:kind>/<str:namespace>/<str:name>/star/", views.entity_star, name="entity-star"),
    path("<str:kind>/<str:namespace>/<str:name>/delete-orphan/", views.entity_delete_orphan,
         name="entity-delete-orphan"),
    path("<str:kind>/<str:namespace>/<str:name>/compare/", views.model_compare, name="model-compare"),
    path("<str:kind>/<str:namespace>/<str:name>/mlflow-sync/", views.model_sync, name="model-sync"),
    path("<str:kind>/<str:namespace>/<str:name>/mlflow-sync/<int:job_id>/", views.model_sync_status,
         name="model-sync-status"),
    path("<str:kind>/<str:namespace>/<str:name>/<str:tab>/", views.entity_detail, name="entity-tab"),
]
