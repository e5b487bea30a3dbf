"""Server-rendered pages and health probes."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from . import services
from .api.errors import error_body
from .api.filters import filter_tag
from .errors import ArtifactStorageError, RegistryError
from .models import Alias, AliasEvent, Artifact, AuditEntry, ModelVersion, RegisteredModel


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
    models = RegisteredModel.objects.with_stats().order_by("name")
    tags = [t for t in request.GET.getlist("tag") if t]
    if tags:
        models = filter_tag(models, "tag", tags)
    return render(request, "models_app/registeredmodel_list.html", {"models": models[:200], "tags": tags})


AUDIT_ON_PAGE = 20


def registered_model_detail(request, name):
    registered = get_object_or_404(RegisteredModel, name=name)
    include_archived = request.GET.get("include_archived") in ("1", "true", "yes")
    versions = registered.versions.select_related("derived_from").order_by("-created_at")
    if not include_archived:
        versions = versions.exclude(status=ModelVersion.Status.ARCHIVED)
    return render(request, "models_app/registeredmodel_detail.html", {
        "model": registered, "versions": versions, "include_archived": include_archived,
        **alias_context(request, registered),
        "audit_entries": AuditEntry.objects.filter(registered_model=registered.name)[:AUDIT_ON_PAGE],
    })


def version_detail(request, name, version):
    model_version = get_object_or_404(
        ModelVersion.objects.select_related("registered_model", "derived_from__registered_model"),
        registered_model__name=name, version=version)
    artifacts = (Artifact.objects.with_version().select_related("derived_from__version__registered_model")
                 .filter(version=model_version).order_by("precision", "target_device"))
    return render(request, "models_app/version_detail.html", {
        "version": model_version, "artifacts": artifacts,
        "derivatives": model_version.derivatives.select_related("registered_model").order_by("-created_at"),
        "version_aliases": model_version.aliases.order_by("name"),
        "audit_entries": AuditEntry.objects.filter(
            registered_model=name, object_type__in=["modelversion", "artifact"],
            object_id__in=[str(model_version.pk), *(str(a.pk) for a in artifacts)])[:AUDIT_ON_PAGE],
    })


def alias_context(request, registered):
    """What the aliases partial shows: the aliases, their recent moves, and the versions an alias
    may point at (archived ones cannot be targets)."""
    return {
        "aliases": (registered.aliases.select_related("version__registered_model", "updated_by")
                    .order_by("name")),
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
        text = getattr(exc, "detail", None) or "; ".join(getattr(exc, "messages", [])) or str(exc)
        messages.error(request, str(text))
    return redirect(registered.get_absolute_url() + "#aliases")


@login_required
@require_POST
def alias_set(request, name):
    def write(registered, alias_name):
        version = registered.versions.filter(pk=request.POST.get("version")).first()
        if version is None:
            raise ValidationError("Choose a version.")
        services.set_alias(registered_model=registered, name=alias_name, version=version, user=request.user,
                           reason=request.POST.get("reason", ""))
        messages.success(request, f"{alias_name} now points to version {version.version}.")

    return _alias_write(request, name, request.POST.get("name"), write)


@login_required
@require_POST
def alias_rollback(request, name, alias):
    def write(registered, alias_name):
        moved, _ = services.rollback_alias(registered_model=registered, name=alias_name, user=request.user,
                                           reason=request.POST.get("reason", ""))
        messages.success(request, f"{alias_name} rolled back to version {moved.version.version}.")

    return _alias_write(request, name, alias, write)


@login_required
@require_POST
def alias_delete(request, name, alias):
    def write(registered, alias_name):
        services.delete_alias(registered_model=registered, name=alias_name, user=request.user,
                              reason=request.POST.get("reason", ""))
        messages.success(request, f"Alias {alias_name} deleted.")

    return _alias_write(request, name, alias, write)
