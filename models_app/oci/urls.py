"""The distribution API's routes under /v2/. Repository names contain slashes (``models/<name>``),
so they are matched up to the fixed words that follow them."""

from django.urls import re_path

from . import views

app_name = "oci"

NAME = r"(?P<name>.+?)"

urlpatterns = [
    re_path(r"^$", views.base, name="base"),
    re_path(r"^token$", views.token, name="token"),
    re_path(r"^_catalog$", views.catalog, name="catalog"),
    re_path(rf"^{NAME}/tags/list$", views.tags_list, name="tags"),
    re_path(rf"^{NAME}/manifests/(?P<reference>[^/]+)$", views.manifest, name="manifest"),
    re_path(rf"^{NAME}/blobs/uploads/?$", views.start_upload, name="upload-start"),
    re_path(rf"^{NAME}/blobs/uploads/(?P<upload_id>[^/]+)$", views.upload, name="upload"),
    re_path(rf"^{NAME}/blobs/(?P<digest>[^/]+)$", views.blob, name="blob"),
    re_path(r"^(?P<path>.*)$", views.unknown, name="unknown"),
]
