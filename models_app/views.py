"""Server-rendered pages and health probes.

Pages read; writes go through the REST API (the upload page posts to it), the admin, or the
alias forms below, all of which call the same services.
"""

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import comparison, services
from .access import add_artifact_access, read_access
from .catalogue import SORTS, CatalogueQuery
from .errors import ArtifactStorageError, RegistryError
from .lib.http import error_body
from .models import Alias, AliasEvent, Artifact, AuditEntry, ModelVersion, RegisteredModel
from .storage import is_s3

logger = logging.getLogger(__name__)

CATALOGUE_PAGE_SIZE = 25
VERSIONS_PAGE_SIZE = 50
# Suggestions for the upload form; any other value is accepted too.
DEVICE_SUGGESTIONS = ["CPU", "GPU", "NPU", "AUTO", "HETERO"]
FORMAT_SUGGESTIONS = ["openvino", "onnx", "pytorch", "tensorflow", "tflite", "paddle"]
AUDIT_ON_PAGE = 20


@never_cache
def healthz(request):
    """Liveness: the process answers. Checks nothing else, so a database outage does not get
    the process restarted in a loop."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: the database and the artifact storage both answer; 503 names what does not. The
    drivers' reasons (which name internal addresses) go to the log, not to whoever asks."""
    checks, failures = {}, []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means "not ready"
        logger.warning("readyz: database unavailable: %s", exc)
        failures.append("database")
    try:
        services.check_storage()
        checks["storage"] = "ok"
    except ArtifactStorageError as exc:
        logger.warning("readyz: storage unavailable: %s", exc.message)
        failures.append("storage")
    if failures:
        body = error_body("not_ready", f"Not ready: {' and '.join(failures)} unavailable.")
        body["checks"] = {**checks, **{name: "unavailable" for name in failures}}
        return JsonResponse(body, status=503, headers={"Retry-After": "30"})
    return JsonResponse({"status": "ok", "checks": checks})


@read_access
def catalogue(request):
    query = CatalogueQuery.from_params(request.GET)
    page = Paginator(query.models(), CATALOGUE_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "models_app/registeredmodel_list.html",
        {
            "page": page,
            "query": query,
            "facets": query.facet_counts(),
            "sorts": [(key, label) for key, (label, _) in SORTS.items()],
        },
    )


@read_access
def registered_model_detail(request, name):
    registered = get_object_or_404(RegisteredModel, name=name)
    include_archived = request.GET.get("include_archived") in ("1", "true", "yes")
    versions = registered.versions.order_by("-created_at", "-pk")
    if not include_archived:
        versions = versions.exclude(status=ModelVersion.Status.ARCHIVED)
    newest = versions.first()
    page = Paginator(versions.with_totals().select_related("derived_from"), VERSIONS_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "models_app/registeredmodel_detail.html",
        {
            "model": registered,
            "page": page,
            "include_archived": include_archived,
            "newest": newest,
            "matrix": newest.variant_matrix() if newest else None,
            **alias_context(request, registered),
            "audit_entries": AuditEntry.objects.filter(registered_model=registered.name)[:AUDIT_ON_PAGE],
        },
    )


@read_access
def version_detail(request, name, version):
    model_version = get_object_or_404(
        ModelVersion.objects.select_related("registered_model", "created_by", "derived_from__registered_model"),
        registered_model__name=name,
        version=version,
    )
    artifacts = sorted(
        Artifact.objects.filter(version=model_version).select_related("derived_from__version__registered_model"),
        key=Artifact.variant_order,
    )
    for artifact in artifacts:
        artifact.absolute_download_url = request.build_absolute_uri(artifact.get_download_url())
    return render(
        request,
        "models_app/version_detail.html",
        {
            "version": model_version,
            "model": model_version.registered_model,
            "artifacts": artifacts,
            "token_required": settings.REGISTRY_REQUIRE_LOGIN,
            "derivatives": model_version.derivatives.select_related("registered_model").order_by("-created_at"),
            "version_aliases": model_version.aliases.order_by("name"),
            "audit_entries": AuditEntry.objects.filter(
                registered_model=name,
                object_type__in=["modelversion", "artifact"],
                object_id__in=[str(model_version.pk), *(str(a.pk) for a in artifacts)],
            )[:AUDIT_ON_PAGE],
        },
    )


@read_access
def compare(request):
    """``?versions=<id>,<id>`` or ``?artifacts=...``: 2 to 4 items side by side with a chart."""
    kind = "artifacts" if "artifacts" in request.GET else "versions" if "versions" in request.GET else None
    context = {"kind": kind}
    if kind is None:
        return render(request, "models_app/compare.html", context)
    try:
        result = comparison.compare(kind, request.GET.getlist(kind))
    except comparison.ComparisonError as exc:
        context["error"] = str(exc)
        return render(request, "models_app/compare.html", context, status=400)
    context.update(comparison=result, legend=comparison.chart_legend(result.points))
    return render(request, "models_app/compare.html", context)


@add_artifact_access
def upload(request):
    """The upload form. The browser posts the file to the artifacts API, which validates and
    stores it, so this view only renders the form."""
    return render(
        request,
        "models_app/upload.html",
        {
            "initial_model": request.GET.get("model", ""),
            "initial_version": request.GET.get("version", ""),
            "precisions": Artifact.Precision.values,
            "devices": DEVICE_SUGGESTIONS,
            "formats": FORMAT_SUGGESTIONS,
            "max_upload_bytes": settings.REGISTRY_MAX_UPLOAD_BYTES,
            "api_url": reverse("api:artifact-list"),
            # Files this big go straight to S3 in parts (0: never, as on local-file storage).
            "direct_upload_threshold": settings.REGISTRY_DIRECT_UPLOAD_THRESHOLD if is_s3() else 0,
            "direct_upload_url": reverse("api:upload-list"),
            # Filled in by the script with the registered model and version the API answered with.
            "version_url_template": reverse(
                "models_app:version-detail", kwargs={"name": "__model__", "version": "__version__"}
            ),
        },
    )


def alias_context(request, registered):
    """What the aliases partial shows: the aliases, their recent moves, and the versions an alias
    may point at (archived ones cannot be targets)."""
    return {
        "aliases": (registered.aliases.select_related("version__registered_model", "updated_by").order_by("name")),
        "alias_events": AliasEvent.objects.filter(registered_model=registered).select_related("user")[:20],
        "alias_targets": registered.versions.exclude(status=ModelVersion.Status.ARCHIVED).order_by("-created_at"),
    }


def _alias_write(request, name, alias_name, write):
    """Run an alias write for the page: permission first, then the service; errors as messages."""
    registered = get_object_or_404(RegisteredModel, name=name)
    alias_name = (alias_name or "").strip().lower()
    if not request.user.has_perm(Alias.permission_for(alias_name)):
        raise PermissionDenied
    try:
        write(registered, alias_name)
    except (RegistryError, ValidationError, Http404) as exc:
        text = exc.message if isinstance(exc, RegistryError) else "; ".join(getattr(exc, "messages", []))
        messages.error(request, text or str(exc))
    return redirect(registered.get_absolute_url() + "#aliases")


@login_required
@require_POST
def alias_set(request, name):
    def write(registered, alias_name):
        version = registered.versions.filter(pk=request.POST.get("version")).first()
        if version is None:
            raise ValidationError("Choose a version.")
        services.set_alias(
            registered_model=registered,
            name=alias_name,
            version=version,
            user=request.user,
            reason=request.POST.get("reason", ""),
        )
        messages.success(request, f"{alias_name} now points to version {version.version}.")

    return _alias_write(request, name, request.POST.get("name"), write)


@login_required
@require_POST
def alias_rollback(request, name, alias):
    def write(registered, alias_name):
        moved, _ = services.rollback_alias(
            registered_model=registered, name=alias_name, user=request.user, reason=request.POST.get("reason", "")
        )
        messages.success(request, f"{alias_name} rolled back to version {moved.version.version}.")

    return _alias_write(request, name, alias, write)


@login_required
@require_POST
def alias_delete(request, name, alias):
    def write(registered, alias_name):
        services.delete_alias(
            registered_model=registered, name=alias_name, user=request.user, reason=request.POST.get("reason", "")
        )
        messages.success(request, f"Alias {alias_name} deleted.")

    return _alias_write(request, name, alias, write)
