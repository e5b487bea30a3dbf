"""Intel Model Registry's Geti routes at the root, without trailing slashes, as Intel served them."""

from django.urls import re_path

from . import intel_views

urlpatterns = [
    re_path(r"^projects/?$", intel_views.IntelProjectList.as_view(), name="intel-geti-projects"),
    re_path(r"^projects/(?P<project_id>[^/]+)/?$", intel_views.IntelProjectDetail.as_view(),
            name="intel-geti-project"),
    re_path(r"^projects/(?P<project_id>[^/]+)/geti-models/download/?$", intel_views.IntelGetiDownload.as_view(),
            name="intel-geti-download"),
]
