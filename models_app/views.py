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
from .models import (
    Alias,
    AliasEvent,
    Artifact,
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    normalize_alias_name,
    protected_alias_names,
)
from .storage import check_storage, is_s3, presigned_endpoint

logger = logging.getLogger(__name__)

CATALOGUE_PAGE_SIZE = 25
VERSIONS_PAGE_SIZE = 50
# Suggestions for the upload form; any other value is accepted too.
DEVICE_SUGGESTIONS = ["CPU", "GPU", "NPU", "AUTO", "HETERO"]
FORMAT_SUGGESTIONS = ["openvino", "onnx", "pytorch", "tensorflow", "tflite", "paddle"]
AUDIT_ON_PAGE = 20
# The alias whose version the model page's matrix opens on: what deployments pull.
DEFAULT_MATRIX_ALIAS = "production"


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
        check_storage(quick=True)
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
    page.object_list = query.attach_matches(list(page.object_list))
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
    page = Paginator(
        versions.with_totals().with_best_score().select_related("derived_from"), VERSIONS_PAGE_SIZE
    ).get_page(request.GET.get("page"))
    aliases_context = alias_context(request, registered)
    aliases = aliases_context["aliases"]
    version_labels = list(registered.versions.order_by("-created_at", "-pk").values_list("version", "status"))
    matrix_version, matrix_reason = matrix_version_for(registered, aliases, request.GET.get("matrix"))
    aliases_of = {}
    for alias in aliases:
        aliases_of.setdefault(alias.version_id, []).append(alias)
    for version in page.object_list:
        version.alias_list = aliases_of.get(version.pk, [])
    return render(
        request,
        "models_app/registeredmodel_detail.html",
        {
            "model": registered,
            "page": page,
            "include_archived": include_archived,
            "matrix_version": matrix_version,
            "matrix_reason": matrix_reason,
            "matrix": matrix_version.variant_matrix() if matrix_version else None,
            "version_labels": version_labels,
            **aliases_context,
            "audit_entries": AuditEntry.objects.filter(registered_model=registered.name)[:AUDIT_ON_PAGE],
        },
    )


def matrix_version_for(registered, aliases, chosen=None):
    """The version whose variants the model page's matrix shows, and why: the one asked for, else
    the one ``production`` points to (what a deployment pulls), else the first alias's, else the
    newest live version. Returns ``(version or None, reason)``."""
    if chosen:
        version = registered.versions.filter(version=chosen).first()
        if version is not None:
            return version, "chosen"
    by_name = {alias.name: alias for alias in aliases}
    alias = by_name.get(DEFAULT_MATRIX_ALIAS) or next(iter(aliases), None)
    if alias is not None:
        return alias.version, f"alias:{alias.name}"
    newest = registered.versions.exclude(status=ModelVersion.Status.ARCHIVED).order_by("-created_at", "-pk").first()
    return newest, "newest"


@read_access
def version_detail(request, name, version):
    model_version = get_object_or_404(
        ModelVersion.objects.select_related("registered_model", "created_by", "derived_from__registered_model"),
        registered_model__name=name,
        version=version,
    )
    artifacts = sorted(
        Artifact.objects.filter(version=model_version).select_related(
            "derived_from__version__registered_model", "inspection"
        ),
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
            # The version made just before this one, to compare with in one click.
            "previous": ModelVersion.objects.filter(
                registered_model_id=model_version.registered_model_id, created_at__lt=model_version.created_at
            )
            .order_by("-created_at", "-pk")
            .values("id", "version")
            .first(),
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
    symbols = {"circle": "●", "square": "■", "triangle": "▲", "diamond": "◆"}
    context.update(
        comparison=result,
        legend=comparison.chart_legend(result.points),
        shapes=[(fmt, symbols[shape]) for fmt, shape in comparison.marker_shapes(result.points).items()],
    )
    return render(request, "models_app/compare.html", context)


@add_artifact_access
def upload(request):
    """The upload form. The browser posts the file to the artifacts API, which validates and
    stores it, so this view only renders the form.

    Big files go from the browser straight to S3, so this page's Content-Security-Policy lets it
    connect to the address the part URLs are signed for."""
    direct = is_s3()
    response = render(
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
            "direct_upload_threshold": settings.REGISTRY_DIRECT_UPLOAD_THRESHOLD if direct else 0,
            "direct_upload_url": reverse("api:upload-list"),
            # Filled in by the script with the registered model and version the API answered with.
            "version_url_template": reverse(
                "models_app:version-detail", kwargs={"name": "__model__", "version": "__version__"}
            ),
        },
    )
    if direct:
        response._csp_update = {"connect-src": [presigned_endpoint()]}
    return response


def alias_context(request, registered):
    """What the aliases partial shows: the aliases, their recent moves, and the versions an alias
    may point at (archived ones cannot be targets)."""
    aliases = list(registered.aliases.select_related("version__registered_model", "updated_by").order_by("name"))
    # What the resolve picker offers beside each alias: the devices and precisions of its version.
    choices = {}
    for version_id, device, precision in Artifact.objects.filter(
        version__in=[a.version_id for a in aliases]
    ).values_list("version_id", "target_device", "precision"):
        devices, precisions = choices.setdefault(version_id, (set(), set()))
        devices.add(device)
        precisions.add(precision)
    for alias in aliases:
        devices, precisions = choices.get(alias.version_id, (set(), set()))
        alias.devices = sorted(devices)
        alias.precisions = sorted(precisions, key=Artifact.precision_order)
    return {
        "aliases": aliases,
        "alias_events": AliasEvent.objects.filter(registered_model=registered).select_related("user")[:20],
        "alias_targets": registered.versions.exclude(status=ModelVersion.Status.ARCHIVED).order_by("-created_at"),
    }


def _alias_write(request, name, alias_name, write, destructive=False):
    """Run an alias write for the page: permission first, then the service; errors as messages.

    A destructive write (roll back, delete) of a protected alias needs its name typed in the
    ``confirm`` field, so one stray click cannot move or drop what deployments pull.
    """
    registered = get_object_or_404(RegisteredModel, name=name)
    alias_name = normalize_alias_name(alias_name)
    if not request.user.has_perm(Alias.permission_for(alias_name)):
        raise PermissionDenied
    try:
        if destructive and alias_name in protected_alias_names():
            if normalize_alias_name(request.POST.get("confirm")) != alias_name:
                raise ValidationError(f"Type {alias_name} to confirm; {alias_name} was left as it was.")
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

    return _alias_write(request, name, alias, write, destructive=True)


@login_required
@require_POST
def alias_delete(request, name, alias):
    def write(registered, alias_name):
        services.delete_alias(
            registered_model=registered, name=alias_name, user=request.user, reason=request.POST.get("reason", "")
        )
        messages.success(request, f"Alias {alias_name} deleted.")

    return _alias_write(request, name, alias, write, destructive=True)
