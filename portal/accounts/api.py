"""API for the signed-in user's own account: who am I, my tokens."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response

from portal.core.api import error_responses

from . import selectors


class MembershipSerializer(serializers.Serializer):
    team = serializers.CharField(source="team.name")
    role = serializers.CharField()


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    is_platform_admin = serializers.BooleanField(source="is_superuser")
    teams = MembershipSerializer(many=True)


@extend_schema(
    summary="The signed-in user",
    description="Returns the user that the token or session belongs to, with their teams and roles.",
    responses={200: MeSerializer, **error_responses()},
)
@api_view(["GET"])
def me(request):
    user = request.user
    data = {"username": user.get_username(), "is_superuser": user.is_superuser, "teams": selectors.teams_of(user)}
    return Response(MeSerializer(data).data)
