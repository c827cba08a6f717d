from django.urls import path

from . import views

app_name = "feedback"
urlpatterns = [
    path("feedback/", views.item_list, name="list"),
    path("feedback/new/", views.new, name="new"),
    path("feedback/useful/", views.useful, name="useful"),
    path("feedback/<int:pk>/", views.detail, name="detail"),
    path("feedback/<int:pk>/answer/", views.answer, name="answer"),
    path("feedback/<int:pk>/vote/", views.vote, name="vote"),
    path("roadmap/", views.roadmap, name="roadmap"),
]
