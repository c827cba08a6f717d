from django.urls import path

from . import views

app_name = "scaffolder"
urlpatterns = [
    path("", views.index, name="index"),
    path("templates/<str:namespace>/<str:name>/", views.template_form, name="template"),
    path("templates/<str:namespace>/<str:name>/check-name/", views.check_name, name="check-name"),
    path("runs/", views.run_list, name="runs"),
    path("runs/<uuid:uid>/", views.run_detail, name="run"),
    path("runs/<uuid:uid>/download/", views.run_download, name="download"),
    path("runs/<uuid:uid>/retry/", views.run_retry, name="retry"),
    path("runs/<uuid:uid>/cancel/", views.run_cancel, name="cancel"),
    path("repositories/<str:owner>/<str:name>.bundle", views.repository_download, name="repository"),
]
