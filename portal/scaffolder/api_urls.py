from django.urls import path

from . import api

urlpatterns = [
    path("scaffolder/templates", api.template_list, name="api-scaffolder-templates"),
    path("scaffolder/runs", api.run_create, name="api-scaffolder-runs"),
    path("scaffolder/runs/<uuid:uid>", api.run_detail, name="api-scaffolder-run"),
    path("scaffolder/runs/<uuid:uid>/retry", api.run_retry, name="api-scaffolder-run-retry"),
    path("scaffolder/runs/<uuid:uid>/cancel", api.run_cancel, name="api-scaffolder-run-cancel"),
]
