"""Intel Model Registry's Geti routes, for clients written against Intel's service.

``GET /projects``, ``GET /projects/{id}`` and ``POST /projects/{id}/geti-models/download`` keep
Intel's paths, JSON shapes, plain-text answers and status codes. What Intel got wrong is fixed
(docs/geti.md): a refused token is an error, not an empty list; every project is listed, not the
first 100; waiting for Geti has a deadline; every task type is accepted. The download runs as
import jobs (the same as /api/v1/geti/imports/) and this view waits for them up to
GETI_INTEL_DOWNLOAD_WAIT_SECONDS: finished in time, it answers Intel's 201; otherwise 202 with
where to follow the jobs.
"""

import re
import time

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from . import importer
from .api import CanImport
from .client import GetiError
from .models import ImportJob

INTEL_ID = re.compile(r"^[a-zA-Z0-9_-]{16,}$")
NOTE = "Note: Only OpenVINO optimized active models are supported at this time.\n"
POLL_SECONDS = 0.5


def text(body, status):
    return HttpResponse(body, status=status, content_type="text/plain; charset=utf-8")


def bad_project_id():
    return Response({"detail": "Invalid format for project ID."}, status=400)


def intel_project(project):
    """Intel's ProjectOut: OpenVINO optimized models only, with their id and name."""
    return {
        "id": project.id, "name": project.name, "creation_time": project.creation_time,
        "model_groups": [{
            "id": group.id, "name": group.name,
            "model_versions": [{
                "id": model.id, "name": model.name, "version": model.version,
                "openvino_models": [{"id": o.id, "name": o.name} for o in model.optimized_models if o.is_openvino],
            } for model in group.models],
        } for group in project.model_groups],
    }


class IntelProjectList(APIView):
    """GET /projects: every Geti project with its OpenVINO optimized models."""

    permission_classes = [CanImport]

    @extend_schema(operation_id="intel_projects_list", tags=["intel-compat"], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        with importer.get_client() as client:
            projects = [importer.fill_tree(client, p) for p in client.list_projects()]
        return Response([intel_project(p) for p in projects])


class IntelProjectDetail(APIView):
    """GET /projects/{id}: one project; 404 ``Project not found.`` when Geti does not know it."""

    permission_classes = [CanImport]

    @extend_schema(operation_id="intel_project_retrieve", tags=["intel-compat"], responses=OpenApiTypes.OBJECT)
    def get(self, request, project_id):
        if not INTEL_ID.match(project_id):
            return bad_project_id()
        with importer.get_client() as client:
            try:
                project = client.get_project(project_id)
            except GetiError as exc:
                if exc.status in (400, 404):
                    return text("Project not found.\n", 404)
                raise
            importer.fill_tree(client, project)
        return Response(intel_project(project))


def _missing(field, value):
    return {"type": "missing", "loc": ["body", *field], "msg": "Field required", "input": value}


def _validate(body):
    """Intel's request model ``{"models": [{"id", "group_id"}]}``; FastAPI-style 422 details."""
    if not isinstance(body, dict) or not isinstance(body.get("models"), list):
        return None, [_missing(["models"], body)]
    errors = []
    for index, entry in enumerate(body["models"]):
        for key in ("id", "group_id"):
            if not isinstance(entry, dict) or not isinstance(entry.get(key), str) or not entry.get(key):
                errors.append(_missing(["models", index, key], entry))
    return body["models"], errors


class IntelGetiDownload(APIView):
    """POST /projects/{id}/geti-models/download: import Geti OpenVINO optimized models."""

    permission_classes = [CanImport]

    @extend_schema(operation_id="intel_geti_models_download", tags=["intel-compat"], request=OpenApiTypes.OBJECT,
                   responses={(201, "text/plain"): OpenApiTypes.STR, (202, "text/plain"): OpenApiTypes.STR})
    def post(self, request, project_id):
        if not INTEL_ID.match(project_id):
            return bad_project_id()
        requested, errors = _validate(request.data)
        if errors:
            return Response({"detail": errors}, status=422)
        ids = list(dict.fromkeys(m["id"] for m in requested))
        if not ids:
            return text(f"Model(s):  can not be registered.\n{NOTE}", 403)

        with importer.get_client() as client:
            try:
                project = importer.fill_tree(client, client.get_project(project_id))
            except GetiError as exc:
                if exc.status in (400, 404):
                    return text("Project or model id not found. No model(s) registered.\n", 404)
                raise
        openvino = {(g.id, o.id): m.id for g in project.model_groups for m in g.models
                    for o in m.optimized_models if o.is_openvino}
        if any((m["group_id"], m["id"]) not in openvino for m in requested):
            return text("Project or model id not found. No model(s) registered.\n", 404)

        registered = sorted(importer.imported_artifacts(ids))
        if registered:
            verb = "is" if len(registered) == 1 else "are"
            return text(f"Model(s): {', '.join(registered)} {verb} already registered. No model(s) registered.\n"
                        "Tip: Delete the previously mentioned model(s) or remove the id(s) from the request "
                        "body then try again.\n", 409)

        jobs = importer.start_imports(project_id=project_id, user=request.user, models=[
            {"group_id": m["group_id"], "model_id": openvino[m["group_id"], m["id"]], "optimized_model_id": m["id"]}
            for m in requested])
        jobs = self._wait(jobs)
        done = [j.optimized_model_id for j in jobs if j.state == ImportJob.State.DONE]
        failed = [j for j in jobs if j.state == ImportJob.State.FAILED]
        active = [j for j in jobs if j.is_active]
        if active:
            return text(f"Model(s): {', '.join(j.optimized_model_id for j in active)} are being imported.\n"
                        f"Follow them at /api/v1/geti/imports/?id={','.join(str(j.id) for j in active)}\n", 202)
        reasons = "".join(f"{j.optimized_model_id}: {j.error}\n" for j in failed)
        if not done:
            return text(f"Model(s): {', '.join(ids)} can not be registered.\n{NOTE}{reasons}", 403)
        body = f"Model(s): {', '.join(done)} registered.\n{NOTE}"
        if failed:
            body += f"Model(s): {', '.join(j.optimized_model_id for j in failed)} can not be registered.\n{reasons}"
        return text(body, 201)

    @staticmethod
    def _wait(jobs):
        """Wait for the jobs to finish, sleeping between looks and never past the deadline
        (Intel's service busy-polled Geti forever)."""
        deadline = time.monotonic() + settings.GETI_INTEL_DOWNLOAD_WAIT_SECONDS
        ids = [j.pk for j in jobs]
        while True:
            jobs = list(ImportJob.objects.filter(pk__in=ids).order_by("created_at"))
            remaining = deadline - time.monotonic()
            if not any(j.is_active for j in jobs) or remaining <= 0:
                return jobs
            time.sleep(min(POLL_SECONDS, remaining))
