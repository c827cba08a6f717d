from django.urls import path

from . import views

app_name = "search"
urlpatterns = [
    path("", views.search_page, name="page"),
    path("typeahead/", views.typeahead, name="typeahead"),
    path("go/", views.click, name="click"),
    path("insights/", views.insights, name="insights"),
]
