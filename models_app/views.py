"""Server-rendered pages and health probes."""

from django.db import connection
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache

from . import services
from .api.errors import error_body
from .errors import ArtifactStorageError
from .models import Artifact, ModelVersion, RegisteredModel


@never_cache
def healthz(request):
    """Liveness: the process answers. Checks nothing else, so a database outage does not get
    the process restarted in a loop."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: the database and the artifact storage both answer; 503 names what does not."""
    checks, failures = {}, {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        failures["database"] = str(exc).strip() or exc.__class__.__name__
    try:
        services.check_storage()
        checks["storage"] = "ok"
    except ArtifactStorageError as exc:
        failures["storage"] = str(exc.detail)
    if failures:
        message = "; ".join(f"{k}: {v}" for k, v in failures.items())
        body = error_body("not_ready", f"Not ready: {message}")
        body["checks"] = {**checks, **{k: "unavailable" for k in failures}}
        return JsonResponse(body, status=503)
    return JsonResponse({"status": "ok", "checks": checks})


def catalogue(request):
    models = RegisteredModel.objects.with_stats().order_by("name")[:200]
    return render(request, "models_app/registeredmodel_list.html", {"models": models})


def registered_model_detail(request, name):
    registered = get_object_or_404(RegisteredModel, name=name)
    versions = registered.versions.order_by("-created_at")
    return render(request, "models_app/registeredmodel_detail.html", {"model": registered, "versions": versions})


def version_detail(request, name, version):
    model_version = get_object_or_404(ModelVersion.objects.select_related("registered_model"),
                                      registered_model__name=name, version=version)
    artifacts = Artifact.objects.with_version().filter(version=model_version).order_by("precision", "target_device")
    return render(request, "models_app/version_detail.html", {"version": model_version, "artifacts": artifacts})
