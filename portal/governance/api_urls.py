from django.urls import path

from . import api

urlpatterns = [
    path("approval-requests", api.approval_requests, name="governance-api-requests"),
    path("approval-requests/<int:pk>", api.approval_request_detail, name="governance-api-request"),
    path("approval-requests/<int:pk>/decisions", api.approval_request_decide, name="governance-api-decide"),
    path(
        "approval-requests/<int:pk>/withdraw", api.approval_request_withdraw, name="governance-api-withdraw"
    ),
    path("approval-requests/<int:pk>/retry", api.approval_request_retry, name="governance-api-retry"),
    path("approval-requests/<int:pk>/comments", api.approval_request_comment, name="governance-api-comment"),
    path("audit-events", api.audit_events, name="governance-api-audit-events"),
]
