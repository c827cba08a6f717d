from django.urls import path

from . import views

app_name = "scorecards"

urlpatterns = [
    path("", views.index, name="index"),
    path("<str:name>/", views.detail, name="detail"),
    path("<str:name>/entities/", views.entities, name="entities"),
    path("<str:name>/campaigns/<str:check_id>/", views.campaign, name="campaign"),
    path("manual/<str:kind>/<str:namespace>/<str:name>", views.manual, name="manual"),
]
