"""Intel Model Registry's Geti routes, for clients written against Intel's service.

``GET /projects``, ``GET /projects/{id}`` and ``POST /projects/{id}/geti-models/download`` keep
Intel's paths, JSON shapes, success bodies and status codes; errors carry Intel's message in our
JSON error shape, as in the rest of the Intel layer (models_app.intel). What Intel got wrong is fixed
(docs/geti.md): a refused token is an error, not an empty list; every project is listed, not the
first 100; waiting for Geti has a deadline; every task type is accepted. The download runs as
import jobs (the same as /api/v1/geti/imports/) in the background worker, and the request does
not wait for them: it answers at once, 202 with where to follow the jobs (Intel's 201 or 403 only
when the jobs are already over, as with the ImmediateBackend). A request never holds a server
thread while Geti prepares and sends a model.
"""

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from models_app.intel.serializers import ID_PATTERN, IntelError, Unprocessable
from models_app.intel.views import IntelView

from . import importer
from .client import GetiError
from .errors import GetiErrorsMixin
from .models import ImportJob

NOTE = "Note: Only OpenVINO optimized active models are supported at this time.\n"
NOT_FOUND = "Project or model id not found. No model(s) registered."
# What a 202 asks a client to wait before it looks at the jobs again.
RETRY_AFTER_SECONDS = 10


def text(body, status_code):
    return HttpResponse(body, status=status_code, content_type="text/plain; charset=utf-8")


def check_project_id(value):
    if not ID_PATTERN.match(value or ""):
        raise IntelError(
            status.HTTP_400_BAD_REQUEST,
            "invalid_id",
            "Invalid format for project ID. An id is 16 to 128 letters, digits, '_' or '-'.",
        )


def intel_project(project):
    """Intel's ProjectOut: OpenVINO optimized models only, with their id and name."""
    return {
        "id": project.id,
        "name": project.name,
        "creation_time": project.creation_time,
        "model_groups": [
            {
                "id": group.id,
                "name": group.name,
                "model_versions": [
                    {
                        "id": model.id,
                        "name": model.name,
                        "version": model.version,
                        "openvino_models": [
                            {"id": o.id, "name": o.name} for o in model.optimized_models if o.is_openvino
                        ],
                    }
                    for model in group.models
                ],
            }
            for group in project.model_groups
        ],
    }


def fetch_project(client, project_id, message):
    """The project's tree, or Intel's 404 with ``message`` when Geti does not know it."""
    try:
        project = client.get_project(project_id)
    except GetiError as exc:
        if exc.status in (400, 404):
            raise IntelError(status.HTTP_404_NOT_FOUND, "not_found", message) from exc
        raise
    return client.fill_tree(project)


@extend_schema(exclude=True)  # Intel's API is described in docs/geti.md
class GetiIntelView(GetiErrorsMixin, IntelView):
    """An Intel route of the integration: Geti failures answer as registry errors."""


class IntelProjectList(GetiIntelView):
    """GET /projects: every Geti project with its OpenVINO optimized models."""

    def get(self, request):
        with importer.get_client() as client:
            projects = [client.fill_tree(p) for p in client.list_projects()]
        return Response([intel_project(p) for p in projects])


@extend_schema(exclude=True)
class IntelProjectDetail(GetiIntelView):
    """GET /projects/{id}: one project; 404 ``Project not found.`` when Geti does not know it."""

    def get(self, request, project_id):
        check_project_id(project_id)
        with importer.get_client() as client:
            project = fetch_project(client, project_id, "Project not found.")
        return Response(intel_project(project))


def parse_models(body):
    """Intel's request model ``{"models": [{"id", "group_id"}]}``; a 422 names what is missing."""
    if not isinstance(body, dict) or not isinstance(body.get("models"), list):
        raise Unprocessable({"models": ["This field is required and must be a list."]})
    errors = {}
    for index, entry in enumerate(body["models"]):
        for key in ("id", "group_id"):
            if not isinstance(entry, dict) or not isinstance(entry.get(key), str) or not entry.get(key):
                errors[f"models.{index}.{key}"] = ["This field is required."]
    if errors:
        raise Unprocessable(errors)
    return body["models"]


@extend_schema(exclude=True)
class IntelGetiDownload(GetiIntelView):
    """POST /projects/{id}/geti-models/download: import Geti OpenVINO optimized models."""

    def post(self, request, project_id):
        check_project_id(project_id)
        requested = parse_models(request.data)
        ids = list(dict.fromkeys(m["id"] for m in requested))
        if not ids:
            raise IntelError(status.HTTP_403_FORBIDDEN, "not_registered", f"Model(s):  can not be registered.\n{NOTE}")
        with importer.get_client() as client:
            project = fetch_project(client, project_id, NOT_FOUND)
        openvino = {
            (g.id, o.id): m.id
            for g in project.model_groups
            for m in g.models
            for o in m.optimized_models
            if o.is_openvino
        }
        if any((m["group_id"], m["id"]) not in openvino for m in requested):
            raise IntelError(status.HTTP_404_NOT_FOUND, "not_found", NOT_FOUND)
        registered = sorted(importer.imported_artifacts(ids))
        if registered:
            verb = "is" if len(registered) == 1 else "are"
            raise IntelError(
                status.HTTP_409_CONFLICT,
                "conflict",
                f"Model(s): {', '.join(registered)} {verb} already registered. No model(s) "
                "registered.\nTip: Delete the previously mentioned model(s) or remove the id(s) "
                "from the request body then try again.",
            )

        jobs = importer.start_imports(
            project_id=project_id,
            user=request.user,
            models=[
                {"group_id": m["group_id"], "model_id": openvino[m["group_id"], m["id"]], "optimized_model_id": m["id"]}
                for m in requested
            ],
        )
        # One look, no waiting: the jobs are over only when the tasks ran inside this request.
        jobs = list(ImportJob.objects.filter(pk__in=[j.pk for j in jobs]).order_by("created_at"))
        done = [j.optimized_model_id for j in jobs if j.state == ImportJob.State.DONE]
        failed = [j for j in jobs if j.state == ImportJob.State.FAILED]
        active = [j for j in jobs if j.is_active]
        if active:
            follow = f"/api/v1/geti/imports/?id={','.join(str(j.id) for j in active)}"
            response = text(
                f"Model(s): {', '.join(j.optimized_model_id for j in active)} are being imported.\n"
                f"Follow them at {follow}\n",
                202,
            )
            response["Location"], response["Retry-After"] = follow, str(RETRY_AFTER_SECONDS)
            return response
        reasons = "".join(f"{j.optimized_model_id}: {j.error}\n" for j in failed)
        if not done:
            raise IntelError(
                status.HTTP_403_FORBIDDEN,
                "not_registered",
                f"Model(s): {', '.join(ids)} can not be registered.\n{NOTE}{reasons}".rstrip("\n"),
            )
        body = f"Model(s): {', '.join(done)} registered.\n{NOTE}"
        if failed:
            body += f"Model(s): {', '.join(j.optimized_model_id for j in failed)} can not be registered.\n{reasons}"
        return text(body, 201)
