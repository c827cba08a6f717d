"""DRF authentication with `Authorization: Bearer <token>`."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from portal.core.client_address import client_address

from . import selectors, services, tokens


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():  # a header of blanks: no scheme
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Malformed Authorization header: use 'Bearer <token>'.")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed bearer token.") from exc
        if tokens.parse(raw) is None:
            raise exceptions.AuthenticationFailed("Malformed bearer token.")
        token = selectors.token_by_hash(tokens.hash_token(raw))
        if token is None or not token.is_active or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        services.token_used(token=token, address=client_address(request))
        return token.user, token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="plinth"'


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """Documents the scheme in the OpenAPI schema (Swagger UI's Authorize button)."""

    target_class = "portal.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "plinth_<prefix>_<secret>",
                "description": "A personal API token (API tokens page, or `manage.py create_token`)."}
