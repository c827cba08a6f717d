from django.urls import path

from . import api

urlpatterns = [
    path("ping", api.ping, name="api-ping"),
    path("me", api.me, name="api-me"),
    path("tokens", api.tokens, name="api-tokens"),
    path("tokens/<int:pk>", api.token_detail, name="api-token"),
]
