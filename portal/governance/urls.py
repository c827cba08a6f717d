from django.urls import path

from . import views

app_name = "governance"
urlpatterns = [
    path("", views.inbox, name="inbox"),
    path("notifications/read/", views.notifications_read, name="notifications-read"),
    path("new/", views.request_new, name="request-new"),
    path("requests/<int:pk>/", views.request_detail, name="request-detail"),
    path("requests/<int:pk>/decide/", views.request_decide, name="request-decide"),
    path("requests/<int:pk>/withdraw/", views.request_withdraw, name="request-withdraw"),
    path("requests/<int:pk>/retry/", views.request_retry, name="request-retry"),
    path("requests/<int:pk>/comment/", views.request_comment, name="request-comment"),
    path("policies/<str:gate>/", views.policy_source, name="policy"),
    path("audit/", views.audit, name="audit"),
]
