"""REST API under /api/v1/geti/: browse Geti's projects, start imports, follow import jobs."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response

from models_app.access import can_add_artifacts, can_read
from models_app.api.pagination import Pagination
from models_app.models import label_names

from . import importer
from .errors import GetiErrorsMixin
from .models import ImportJob

GETI_ID = r"^[A-Za-z0-9_-]{1,64}$"

# The failures of the operations that ask Geti, in the registry's error shape (the schema hook
# models_app.api.schema adds the generic ones and the Error component).
ERROR = {"$ref": "#/components/schemas/Error"}
GETI_ERRORS = {
    404: OpenApiResponse(
        ERROR,
        description="Geti does not know the project or model; or `geti_disabled`: this registry's Geti "
        "integration is off (an operator switches it on by setting GETI_HOST and GETI_TOKEN).",
    ),
    502: OpenApiResponse(
        ERROR, description="Geti refused the token (`geti_token_refused`) or denied access (`geti_forbidden`)."
    ),
    503: OpenApiResponse(
        ERROR,
        description="Geti is unreachable or failing (`geti_unavailable`), the GETI_* variables are unusable "
        "(`geti_misconfigured`), or the database is unavailable; with Retry-After.",
    ),
}


# --- permissions ------------------------------------------------------------------------------


class CanImport(BasePermission):
    """Reads follow the registry's rule (open unless REGISTRY_REQUIRE_LOGIN); starting an import
    writes artifacts, so it needs ``models_app.add_artifact``."""

    def has_permission(self, request, view):
        if request.method in SAFE_METHODS:
            return can_read(request.user)
        return can_add_artifacts(request.user)


# --- projects ---------------------------------------------------------------------------------


def optimized_json(optimized, imported):
    artifact = imported.get(optimized.id)
    return {
        "id": optimized.id,
        "name": optimized.name,
        "model_format": optimized.model_format,
        "precision": optimized.precision,
        "optimization_type": optimized.optimization_type,
        "has_xai_head": optimized.has_xai_head,
        "model_status": optimized.model_status,
        "score": optimized.score,
        "size": optimized.size,
        "version": optimized.version,
        "creation_date": optimized.creation_date,
        "imported_artifact": str(artifact.id) if artifact else None,
    }


def project_json(project, imported=None):
    """A project as our API shows it; ``imported`` maps Geti optimized ids to registry artifacts."""
    imported = imported or {}
    return {
        "id": project.id,
        "name": project.name,
        "creation_time": project.creation_time,
        "task_types": project.task_types,
        "score": project.score,
        "model_groups": [
            {
                "id": group.id,
                "name": group.name,
                "task_id": group.task_id,
                "model_template_id": group.model_template_id,
                "learning_approach": group.learning_approach,
                "models": [
                    {
                        "id": model.id,
                        "name": model.name,
                        "architecture": model.architecture,
                        "version": model.version,
                        "creation_date": model.creation_date,
                        "score": model.score,
                        "size": model.size,
                        "active_model": model.active_model,
                        "is_purged": model.is_purged,
                        "labels": label_names(model.labels),
                        "optimized_models": [optimized_json(o, imported) for o in model.optimized_models],
                    }
                    for model in group.models
                ],
            }
            for group in project.model_groups
        ],
    }


def optimized_ids(projects):
    return [o.id for p in projects for g in p.model_groups for m in g.models for o in m.optimized_models]


class ProjectPagination(Pagination):
    """Each project on a page costs Geti calls (its groups and models), so pages are short."""

    page_size = 10
    max_page_size = 100


class GetiProjectViewSet(GetiErrorsMixin, viewsets.ViewSet):
    """Geti's projects with their model groups, models and optimized models, read live from Geti.

    ``imported_artifact`` says which optimized models are already in the registry.
    """

    permission_classes = [CanImport]
    pagination_class = ProjectPagination
    lookup_value_regex = "[A-Za-z0-9_-]+"

    @extend_schema(
        responses={
            200: inline_serializer(
                "GetiProjectPage", {"count": serializers.IntegerField(), "results": serializers.ListField()}
            ),
            **GETI_ERRORS,
        }
    )
    def list(self, request):
        paginator = self.pagination_class()
        with importer.get_client() as client:
            page = paginator.paginate_queryset(client.list_projects(), request, view=self)
            for project in page:
                client.fill_tree(project)
        imported = importer.imported_artifacts(optimized_ids(page))
        return paginator.get_paginated_response([project_json(p, imported) for p in page])

    @extend_schema(responses={200: inline_serializer("GetiProject", {"id": serializers.CharField()}), **GETI_ERRORS})
    def retrieve(self, request, pk=None):
        with importer.get_client() as client:
            project = client.fill_tree(client.get_project(pk))
        return Response(project_json(project, importer.imported_artifacts(optimized_ids([project]))))


# --- import jobs ------------------------------------------------------------------------------


class ImportModelSerializer(serializers.Serializer):
    group_id = serializers.RegexField(GETI_ID)
    model_id = serializers.RegexField(
        GETI_ID, required=False, allow_blank=True, help_text="The trained model; found through Geti when omitted."
    )
    optimized_model_id = serializers.RegexField(GETI_ID)


class ImportRequestSerializer(serializers.Serializer):
    project_id = serializers.RegexField(GETI_ID)
    models = ImportModelSerializer(many=True, allow_empty=False, max_length=100)


class ImportJobSerializer(serializers.ModelSerializer):
    progress = serializers.FloatField(read_only=True, allow_null=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    artifact = serializers.SerializerMethodField()

    class Meta:
        model = ImportJob
        fields = [
            "id",
            "state",
            "project_id",
            "project_name",
            "group_id",
            "model_id",
            "optimized_model_id",
            "name",
            "bytes_done",
            "bytes_total",
            "progress",
            "error",
            "artifact",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_artifact(self, job) -> dict | None:
        artifact = job.artifact
        if artifact is None:
            return None
        version = artifact.version
        return {
            "id": str(artifact.id),
            "registered_model": version.registered_model.name,
            "version": version.version,
            "precision": artifact.precision,
            "format": artifact.format,
            "size": artifact.size,
            "sha256": artifact.sha256,
            "url": version.get_absolute_url(),
            "download_url": artifact.get_download_url(),
        }


class UUIDInFilter(filters.BaseInFilter, filters.UUIDFilter):
    pass


class ImportJobFilterSet(filters.FilterSet):
    state = filters.MultipleChoiceFilter(choices=ImportJob.State.choices)
    id = UUIDInFilter(field_name="id", help_text="Comma-separated job ids (the page polls its jobs so).")

    class Meta:
        model = ImportJob
        fields = ["state", "project_id", "optimized_model_id", "id"]


class ImportJobViewSet(GetiErrorsMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Import jobs: POST to import Geti optimized models (202, one job per model); GET to follow.

    A model already being imported gets its running job back instead of a second one; a model
    imported before gets a job that finishes at once without downloading.
    """

    permission_classes = [CanImport]
    serializer_class = ImportJobSerializer
    filterset_class = ImportJobFilterSet
    search_fields = ["name", "project_name", "optimized_model_id"]
    ordering_fields = ["created_at", "finished_at", "state"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return ImportJob.objects.with_related()

    @extend_schema(
        request=ImportRequestSerializer,
        responses={
            202: inline_serializer("ImportJobsStarted", {"jobs": ImportJobSerializer(many=True)}),
            **GETI_ERRORS,
        },
    )
    def create(self, request):
        data = ImportRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        jobs = importer.start_imports(
            project_id=data.validated_data["project_id"], models=data.validated_data["models"], user=request.user
        )
        return Response({"jobs": ImportJobSerializer(jobs, many=True).data}, status=status.HTTP_202_ACCEPTED)
