from django.urls import path

from . import views

app_name = "geti"

urlpatterns = [
    path("", views.projects, name="projects"),
    path("import/", views.start_import, name="import"),
]
