"""REST API views: parse, call a service, respond."""

import base64

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Sum
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from .. import services
from ..models import Artifact, ModelVersion, RegisteredModel
from .filters import ArtifactFilterSet, ModelVersionFilterSet, RegisteredModelFilterSet
from .serializers import (
    ArtifactSerializer,
    ArtifactUploadSerializer,
    ModelVersionSerializer,
    RegisteredModelSerializer,
)

FORCE_PARAM = OpenApiParameter("force", OpenApiTypes.BOOL, description="Also delete every version and file.")


class AtomicSaveMixin:
    """Saves in a savepoint, so a unique-constraint race becomes a clean 409 (via the exception
    handler) without leaving the connection in a broken transaction."""

    def perform_create(self, serializer):
        with transaction.atomic():
            serializer.save(**self.save_kwargs())

    def perform_update(self, serializer):
        with transaction.atomic():
            serializer.save()

    def save_kwargs(self):
        return {}


class RegisteredModelViewSet(AtomicSaveMixin, viewsets.ModelViewSet):
    """Registered models, looked up by name."""

    serializer_class = RegisteredModelSerializer
    filterset_class = RegisteredModelFilterSet
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at", "latest_version_at", "version_count"]
    ordering = ["name"]

    def get_queryset(self):
        return RegisteredModel.objects.with_stats()

    @extend_schema(parameters=[FORCE_PARAM])
    def destroy(self, request, *args, **kwargs):
        force = request.query_params.get("force", "").lower() in {"1", "true", "yes"}
        services.delete_registered_model(self.get_object(), force=force)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelVersionViewSet(AtomicSaveMixin, viewsets.ModelViewSet):
    """Versions of registered models. Deleting a version deletes its artifacts and their files."""

    serializer_class = ModelVersionSerializer
    filterset_class = ModelVersionFilterSet
    search_fields = ["version", "description", "registered_model__name", "architecture", "category",
                     "project_name"]
    ordering_fields = ["created_at", "updated_at", "version", "registered_model__name"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return (
            ModelVersion.objects.select_related("registered_model", "created_by")
            .annotate(artifact_count=Count("artifacts"), total_size=Sum("artifacts__size"))
        )

    def save_kwargs(self):
        return {"created_by": self.request.user}

    def perform_destroy(self, instance):
        services.delete_version(instance)


class ArtifactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.UpdateModelMixin,
                      viewsets.GenericViewSet):
    """Artifacts: one model file per precision, target device and format of a version.

    Create with a multipart upload (the file and its metadata in one request); the registered
    model and version are created when needed. The file itself cannot be replaced: register a new
    version instead, so what was once downloaded under an id never changes.
    """

    serializer_class = ArtifactSerializer
    filterset_class = ArtifactFilterSet
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    search_fields = ["version__registered_model__name", "version__version", "version__description",
                     "version__architecture", "version__category", "version__project_name",
                     "precision", "target_device", "format"]
    ordering_fields = ["created_at", "updated_at", "score", "size", "precision", "target_device",
                       "version__version", "version__registered_model__name"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return Artifact.objects.with_version()

    @extend_schema(request={"multipart/form-data": ArtifactUploadSerializer}, responses={201: ArtifactSerializer})
    def create(self, request, *args, **kwargs):
        upload = ArtifactUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        version_fields, artifact_fields = upload.split()
        fileobj = upload.validated_data["file"]
        # Set by HashingUploadHandler while the file streamed in; absent for other upload paths.
        sha256 = getattr(fileobj, "sha256", None)
        artifact = services.register_artifact(
            model_name=upload.validated_data["registered_model"],
            version=upload.validated_data["version"],
            fileobj=fileobj,
            user=request.user,
            version_fields=version_fields,
            artifact_fields=artifact_fields,
            size=fileobj.size if sha256 else None,
            sha256=sha256,
            filename=fileobj.name,
            content_type=fileobj.content_type or "",
        )
        artifact = self.get_queryset().get(pk=artifact.pk)
        body = self.get_serializer(artifact).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["download_url"]})

    def perform_update(self, serializer):
        services.update_artifact(serializer.instance, artifact_fields=serializer.validated_data)

    def destroy(self, request, *args, **kwargs):
        services.delete_artifact(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY,
                   (206, "application/octet-stream"): OpenApiTypes.BINARY},
        parameters=[OpenApiParameter("Range", OpenApiTypes.STR, OpenApiParameter.HEADER,
                                     description="bytes=START-END for a partial download")],
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def download(self, request, pk=None):
        """The artifact's file, streamed, with its sha256 as ETag and Digest; supports Range."""
        return artifact_file_response(request, self.get_object())


def artifact_file_response(request, artifact, content_type="application/octet-stream"):
    """A streamed download response with the headers download tools and caches rely on."""
    etag = f'"{artifact.sha256}"'
    headers = {
        "Content-Disposition": content_disposition_header(True, artifact.download_filename),
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Digest": "SHA-256=" + base64.b64encode(bytes.fromhex(artifact.sha256)).decode(),
        "Repr-Digest": "sha-256=:" + base64.b64encode(bytes.fromhex(artifact.sha256)).decode() + ":",
        "X-Checksum-SHA256": artifact.sha256,
    }
    if etag in request.headers.get("If-None-Match", ""):
        return HttpResponse(status=status.HTTP_304_NOT_MODIFIED, headers=headers)
    byte_range = None
    if_range = request.headers.get("If-Range")
    if not if_range or if_range == etag:
        byte_range = services.parse_range(request.headers.get("Range"), artifact.size)
    start, end = byte_range or (0, artifact.size - 1)
    chunks = services.iter_artifact(artifact, start, end, settings.REGISTRY_DOWNLOAD_CHUNK_BYTES)
    response = StreamingHttpResponse(chunks, content_type=content_type, headers=headers)
    response["Content-Length"] = str(max(end - start + 1, 0))
    if byte_range:
        response.status_code = status.HTTP_206_PARTIAL_CONTENT
        response["Content-Range"] = f"bytes {start}-{end}/{artifact.size}"
    return response
