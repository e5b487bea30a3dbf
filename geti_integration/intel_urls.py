"""Intel Model Registry's Geti routes at the root, without trailing slashes, as Intel served them
(and as models_app.intel serves /models)."""

from django.urls import path

from . import intel_views

urlpatterns = [
    path("projects", intel_views.IntelProjectList.as_view(), name="intel-geti-projects"),
    path("projects/<str:project_id>", intel_views.IntelProjectDetail.as_view(), name="intel-geti-project"),
    path(
        "projects/<str:project_id>/geti-models/download",
        intel_views.IntelGetiDownload.as_view(),
        name="intel-geti-download",
    ),
]
