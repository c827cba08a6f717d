from django.urls import path

from . import views

app_name = "accounts"
urlpatterns = [
    path("accounts/sign-in/", views.sign_in, name="login"),
    path("accounts/sign-out/", views.sign_out, name="logout"),
    path("accounts/oidc/start/", views.oidc_start, name="oidc-start"),
    path("accounts/oidc/callback/", views.oidc_callback, name="oidc-callback"),
    path("accounts/tokens/", views.token_list, name="tokens"),
    path("accounts/tokens/<int:pk>/revoke/", views.token_revoke, name="token-revoke"),
    path("teams/", views.team_list, name="teams"),
    path("teams/<str:name>/", views.team_detail, name="team-detail"),
]
