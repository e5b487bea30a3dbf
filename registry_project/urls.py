"""URL layout: pages at the root, the REST API under /api/v1/, its schema and docs under /api/, and
Intel's Model Registry API at its own root paths (models_app.intel)."""

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    RequestDataTooBig,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.http import HttpResponseBadRequest
from django.template.loader import render_to_string
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from models_app import views as model_views
from models_app.lib.http import json_error_view

# ReDoc styles itself with <style> elements it creates at run time and has no way to take a
# nonce, so its page alone allows inline styles; its scripts stay as strict as everywhere else.
redoc_view = csp_update({"style-src": [UNSAFE_INLINE]})(SpectacularRedocView.as_view(url_name="schema"))

admin.site.site_header = "Model Registry administration"
admin.site.site_title = "Model Registry"
# Change lists need the width more than a second copy of the index does.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("healthz", model_views.healthz, name="healthz"),
    path("readyz", model_views.readyz, name="readyz"),
    path("api/v1/geti/", include("geti_integration.api_urls")),
    path("api/v1/webhooks/", include("webhooks.api_urls")),
    path("api/v1/", include("models_app.api.urls")),
    # The OCI distribution API: models served as OCI artifacts to oras, skopeo, Kubernetes.
    path("v2/", include("models_app.oci.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's set-up script as a file, so the page needs no inline code.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", redoc_view, name="redoc"),
    path("admin/", admin.site.urls),
    path("geti/", include("geti_integration.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Intel's Model Registry API at its root paths (/health, /models, /models/{id}, ...), and
    # its Geti routes (/projects, /projects/{id}, /projects/{id}/geti-models/download).
    path("", include("models_app.intel.urls")),
    path("", include("geti_integration.intel_urls")),
    path("", include("models_app.urls")),
]

handler400 = "registry_project.urls.bad_request"
handler404 = "registry_project.urls.not_found"
handler500 = "registry_project.urls.server_error"


def is_intel_path(path):
    """Intel's paths: /health, /models, /projects (Geti) and below, never with the trailing slash of
    our pages."""
    return path == "/health" or (
        not path.endswith("/") and any(path == root or path.startswith(root + "/") for root in ("/models", "/projects"))
    )


def bad_request(request, exception=None):
    """Django's own refusals (a Host not allowed, too many form fields, too big a form, a NUL in the
    URL, a body sent too slowly) say what is wrong, in JSON on API paths (ours and Intel's). The
    messages of SuspiciousOperations are Django's log lines, not for clients."""
    message = "Bad request."
    if isinstance(exception, DisallowedHost):
        message = "The Host header names a host this registry does not serve."
    elif isinstance(exception, RequestDataTooBig):
        message = "The request body is too large for a form; send files as uploads."
    elif isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
        message = "The request has too many form fields or files."
    elif isinstance(exception, BadRequest) and str(exception):
        message = str(exception)
    if request.path.startswith("/api/") or is_intel_path(request.path):
        return json_error_view(400, "bad_request", message)(request)
    return HttpResponseBadRequest(render_to_string("400.html", {"message": message}))


def not_found(request, exception=None):
    """JSON for API paths (ours and Intel's), the usual page elsewhere."""
    if request.path.startswith("/api/") or is_intel_path(request.path):
        return json_error_view(404, "not_found", "Not found.")(request)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/") or is_intel_path(request.path):
        return json_error_view(500, "server_error", "Internal server error; it has been logged.")(request)
    from django.views.defaults import server_error as default

    return default(request)
