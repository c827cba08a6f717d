from django.urls import path

from . import api

urlpatterns = [
    path("feedback", api.items, name="feedback-api-items"),
    path("feedback/<int:pk>", api.item, name="feedback-api-item"),
    path("feedback/<int:pk>/status", api.set_status, name="feedback-api-status"),
    path("feedback/<int:pk>/vote", api.vote, name="feedback-api-vote"),
    path("roadmap", api.roadmap, name="feedback-api-roadmap"),
]
