"""API for the signed-in user's own account: who am I, my API tokens."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from portal.core import pagination
from portal.core.api import error_responses
from portal.core.client_address import client_address
from portal.core.limits import FORM, body_limit

from . import selectors, services
from .models import APIToken

TOKEN_EXPIRY_DAYS = (7, 30, 90, 365)  # as the API tokens page offers them
MAX_LIMIT = 500


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
@api_view(["GET", "HEAD"])
def me(request):
    user = request.user
    data = {"username": user.get_username(), "is_superuser": user.is_superuser, "teams": selectors.teams_of(user)}
    return Response(MeSerializer(data).data)


class PingSerializer(serializers.Serializer):
    ok = serializers.BooleanField(help_text="Always true.")


@extend_schema(
    summary="Check credentials (no-op)",
    description="Answers `{\"ok\": true}` to any signed-in caller (token or session) and does nothing else: "
                "the cheapest authenticated request, the floor the API's request latency is measured against "
                "(docs/deployment.md, \"Request latency\").",
    responses={200: PingSerializer, **error_responses()},
)
@api_view(["GET", "HEAD"])
def ping(request):
    return Response({"ok": True})


# -- API tokens -------------------------------------------------------------------------------------
# The API twin of the API tokens page: the same services (and so the same audit events and rules:
# `permissions.may_manage_token`); a token of another user answers like a missing one.


class TokenSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField(help_text="The token's first characters after `plinth_`, to recognise it.")
    createdAt = serializers.DateTimeField(source="created_at")
    lastUsedAt = serializers.DateTimeField(source="last_used_at", allow_null=True)
    expiresAt = serializers.DateTimeField(source="expires_at", allow_null=True)
    revokedAt = serializers.DateTimeField(source="revoked_at", allow_null=True)
    active = serializers.BooleanField(source="is_active", help_text="Neither revoked nor expired.")


class TokenCreatedSerializer(TokenSerializer):
    secret = serializers.CharField(help_text="The token itself, shown this once: it is not stored.")


class TokenPageSerializer(serializers.Serializer):
    items = TokenSerializer(many=True)
    pageInfo = serializers.DictField(help_text="`nextCursor`: pass as `cursor` for the next page (null: the end).")


class TokenInput(serializers.Serializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for, e.g. `CI pipeline`.")
    expiresInDays = serializers.ChoiceField(choices=TOKEN_EXPIRY_DAYS, required=False, allow_null=True,
                                            help_text="Omit (or null) for a token that does not expire.")


@extend_schema(methods=["GET"], summary="List your API tokens", operation_id="tokens_list",
               description="Your own tokens, newest first, revoked and expired ones included. Never the secrets.",
               parameters=[OpenApiParameter("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                                            description=f"Page size, 1–{MAX_LIMIT} (default 100)."),
                           OpenApiParameter("cursor", str, description="`pageInfo.nextCursor` of the previous page.")],
               responses={200: TokenPageSerializer, **error_responses()})
@extend_schema(methods=["POST"], summary="Create an API token", operation_id="tokens_create",
               description="A personal token for the signed-in user. The answer carries the secret; it is shown "
                           "this once and cannot be read again. Created with a token, the new token expires no "
                           "later than that one and is revoked with it.",
               request=TokenInput,
               responses={201: TokenCreatedSerializer, **error_responses()})
@body_limit(FORM)
@api_view(["GET", "HEAD", "POST"])
def tokens(request):
    if request.method == "POST":
        body = TokenInput(data=request.data)
        body.is_valid(raise_exception=True)
        token, secret = services.token_create(user=request.user, name=body.validated_data["name"],
                                              expires_in_days=body.validated_data.get("expiresInDays"),
                                              parent=request.auth if isinstance(request.auth, APIToken) else None,
                                              address=client_address(request))
        response = Response({**TokenSerializer(token).data, "secret": secret}, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response
    limit = pagination.page_size(request.query_params, default=100, maximum=MAX_LIMIT)
    qs = selectors.tokens_of(request.user).order_by("-pk")
    if request.query_params.get("cursor"):
        before = pagination.decode_cursor(request.query_params["cursor"], {"before": pagination.integer})
        qs = qs.filter(pk__lt=before["before"])
    page = list(qs[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    cursor = pagination.encode_cursor({"before": page[-1].pk}) if more else None
    return Response({"items": TokenSerializer(page, many=True).data, "pageInfo": {"nextCursor": cursor}})


@extend_schema(summary="Revoke an API token", operation_id="tokens_revoke",
               description="Revokes one of your tokens at once (it stays listed, with `revokedAt`), and the tokens "
                           "created with it. Revoking a revoked token changes nothing. Another user's token answers 404.",
               responses={204: OpenApiResponse(description="Revoked."), **error_responses(404)})
@body_limit(FORM)
@api_view(["DELETE"])
def token_detail(request, pk: int):
    token = selectors.token_of(request.user, pk)
    if token is None:
        raise NotFound("No such token.")
    services.token_revoke(token=token, actor=request.user, address=client_address(request))
    return Response(status=status.HTTP_204_NO_CONTENT)
