"""The Geti page: browse the Geti server's projects, pick optimized models, import them."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from models_app.access import add_artifact_access, can_add_artifacts, read_access

from . import importer
from .api import optimized_ids, project_json
from .client import GetiError
from .errors import GetiDisabled, GetiMisconfigured, api_status, describe
from .models import ImportJob

RECENT_JOBS = 30


@read_access
def projects(request):
    """Projects of the Geti server; with ``?project=<id>``, that project's models to pick from.

    The integration being off or Geti failing is shown on the page (with what to do), never a 500.
    """
    context = {
        "disabled": False,
        "error": None,
        "projects": [],
        "project": None,
        "can_import": can_add_artifacts(request.user),
        "jobs": ImportJob.objects.with_related()[:RECENT_JOBS],
    }
    status = 200
    selected = request.GET.get("project", "")
    try:
        with importer.get_client() as client:
            context["projects"] = client.list_projects()
            if selected:
                project = client.fill_tree(client.get_project(selected))
                imported = importer.imported_artifacts(optimized_ids([project]))
                context["project"] = _with_links(project_json(project, imported), imported)
    except GetiDisabled:
        context["disabled"] = True
    except GetiMisconfigured as exc:
        context["error"], status = exc.message, 503
    except GetiError as exc:
        context["error"], status = describe(exc), api_status(exc)[0]
    return render(request, "geti_integration/projects.html", context, status=status)


def _with_links(project, imported):
    """Add the registry page of each already-imported optimized model."""
    by_id = {str(a.id): a for a in imported.values()}
    for group in project["model_groups"]:
        for model in group["models"]:
            for optimized in model["optimized_models"]:
                artifact = by_id.get(optimized["imported_artifact"] or "")
                optimized["registry_url"] = artifact.version.get_absolute_url() if artifact else ""
    return project


@require_POST
@add_artifact_access
def start_import(request):
    """Queue imports of the ticked optimized models (values ``group:model:optimized``)."""
    project_id = request.POST.get("project_id", "")
    picked = []
    for value in request.POST.getlist("models"):
        parts = value.split(":")
        if len(parts) == 3 and all(parts):
            picked.append({"group_id": parts[0], "model_id": parts[1], "optimized_model_id": parts[2]})
    back = f"{reverse('geti:projects')}?project={project_id}" if project_id else reverse("geti:projects")
    if not project_id or not picked:
        messages.error(request, "Tick at least one optimized model to import.")
        return redirect(back)
    try:
        jobs = importer.start_imports(project_id=project_id, models=picked, user=request.user)
    except GetiError as exc:
        messages.error(request, describe(exc))
    except (GetiDisabled, GetiMisconfigured) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Queued {len(jobs)} import(s); progress is shown below.")
    return redirect(back)
