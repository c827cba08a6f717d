from django.urls import path

from . import api

urlpatterns = [
    path("me", api.me, name="api-me"),
    path("ping", api.ping, name="api-ping"),
    path("tokens", api.tokens, name="api-tokens"),
    path("tokens/<int:pk>", api.token_detail, name="api-token"),
]
