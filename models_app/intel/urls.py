"""Intel's root paths. The pages live under /m/<name>/, so they never meet these, and every
/models/<segment> resolves here, so APPEND_SLASH never redirects an Intel client."""

from django.urls import path

from . import views

app_name = "intel"

urlpatterns = [
    path("health", views.health, name="health"),
    path("models", views.ModelListView.as_view(), name="model-list"),
    path("models/<str:entry_id>", views.ModelDetailView.as_view(), name="model-detail"),
    path("models/<str:entry_id>/files", views.ModelFilesView.as_view(), name="model-files"),
]
