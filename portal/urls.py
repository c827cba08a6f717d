"""URL map of the whole portal."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from portal.accounts.views import admin_sign_in

urlpatterns = [
    path("", include("portal.site.urls")),
    path("", include("portal.core.urls")),
    path("", include("portal.accounts.urls")),
    path("", include("portal.insights.preference_urls")),
    path("catalog/", include("catalog.urls")),
    path("api/v1/", include("catalog.api_urls")),
    path("api/v1/", include("portal.accounts.api_urls")),
    path("api/v1/", include("portal.search.api_urls")),
    path("api/v1/", include("portal.governance.api_urls")),
    path("api/v1/", include("portal.scaffolder.api_urls")),
    path("api/v1/", include("portal.techdocs.api_urls")),
    path("api/v1/", include("portal.insights.api_urls")),
    path("api/v1/", include("portal.feedback.api_urls")),
    path("api/v1/", include("portal.lineage.api_urls")),
    path("api/v1/", include("portal.deployments.api_urls")),
    path("api/v1/", include("portal.scorecards.api_urls")),
    path("api/v1/", include("portal.slo.api_urls")),
    path("api/v1/", include("portal.costs.api_urls")),
    path("api/v1/", include("portal.incidents.api_urls")),
    path("search/", include("portal.search.urls")),
    path("reviews/", include("portal.deployments.urls")),  # /reviews/drift/: compliance drift
    path("reviews/", include("portal.governance.urls")),
    path("create/", include("portal.scaffolder.urls")),
    path("docs/", include("portal.techdocs.urls")),
    path("insights/", include("portal.insights.urls")),
    path("insights/", include("portal.feedback.urls")),
    path("lineage/", include("portal.lineage.urls")),
    path("scorecards/", include("portal.scorecards.urls")),
    path("costs/", include("portal.costs.urls")),
    path("incidents/", include("portal.incidents.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The split view serves its initialiser as a script file: the CSP forbids inline scripts. The two
    # viewers are pages for people: a signed-out visitor is sent to sign-in (the API answers 401).
    # Both live inside the portal's frame (top bar, a way back; templates/core/api_*.html).
    path("api/docs/", login_required(SpectacularSwaggerSplitView.as_view(url_name="api-schema",
                                                                         template_name="core/api_swagger.html")),
         name="api-docs"),
    # Plinth's own Redoc page: no Google Fonts, no inline script, the CSP-patched bundle (core/vendor.py).
    path("api/redoc/", login_required(SpectacularRedocView.as_view(url_name="api-schema",
                                                                   template_name="core/api_redoc.html")),
         name="api-redoc"),
    # Before the admin's own login form, which would bypass the sign-in throttle and its audit.
    path("admin/login/", admin_sign_in, name="admin-login"),
    path("admin/", admin.site.urls),
]

handler400 = "portal.core.views.bad_request"
handler403 = "portal.core.views.permission_denied"
handler404 = "portal.core.views.page_not_found"
handler500 = "portal.core.views.server_error"
