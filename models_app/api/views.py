"""REST API views: parse, call a service, respond."""

from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.metadata import SimpleMetadata
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import direct_uploads, reads, services
from ..downloads import artifact_file_response, download_response
from ..models import (
    AliasEvent,
    Artifact,
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    UploadSession,
    normalize_alias_name,
)
from ..uploads import StreamingFileParser, StreamingMultiPartParser
from . import prepared
from .filters import ArtifactFilterSet, AuditEntryFilterSet, ModelVersionFilterSet, RegisteredModelFilterSet
from .idempotency import IdempotentCreateMixin
from .permissions import AliasPermissions, CanAddArtifacts, ChangePermissions, CreatePermissions, ReadOnly
from .serializers import (
    AliasEventSerializer,
    AliasReasonSerializer,
    AliasSerializer,
    AliasWriteSerializer,
    ArtifactSerializer,
    ArtifactUploadSerializer,
    AuditEntrySerializer,
    CompleteUploadSerializer,
    DirectUploadSerializer,
    ModelVersionSerializer,
    PartURLsRequestSerializer,
    PartURLsSerializer,
    RawUploadQuerySerializer,
    ReceivedPartsSerializer,
    RegisteredModelSerializer,
    ResolveQuerySerializer,
    ResolveSerializer,
    StartedUploadSerializer,
    UploadSessionSerializer,
    resolve_answer,
)

FORCE_PARAM = OpenApiParameter("force", OpenApiTypes.BOOL, description="Also delete every version and file.")


class PreparedListMixin:
    """The first page of a list from SQL compiled once per kind of request, for requests whose
    parameters are all among ``prepared_params`` (plus ordering and page size); see
    models_app/api/prepared.py."""

    prepared_params = ()

    def list(self, request, *args, **kwargs):
        response = prepared.first_page(self, request)
        return response if response is not None else super().list(request, *args, **kwargs)


class RegisteredModelViewSet(IdempotentCreateMixin, PreparedListMixin, viewsets.ModelViewSet):
    """Registered models, looked up by name."""

    serializer_class = RegisteredModelSerializer
    prepared_params = ("name", "tag")
    filterset_class = RegisteredModelFilterSet
    lookup_field = "name"
    lookup_value_regex = "[^/]+"
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at", "updated_at", "latest_version_at", "version_count"]
    ordering = ["name"]

    def get_queryset(self):
        if self.action == "resolve":  # the model only leads to its versions: no stats to show
            return RegisteredModel.objects.all()
        return RegisteredModel.objects.with_stats()

    # Creates and updates go through services: each runs in a savepoint (a unique-constraint race
    # becomes a clean 409) and writes its audit entry in the same transaction.
    def perform_create(self, serializer):
        created = services.create_registered_model(user=self.request.user, **serializer.validated_data)
        # The stats the list shows (``with_stats``), so the 201 carries every field the schema
        # has: a model just made has no versions.
        created.version_count, created.latest_version_at = 0, None
        serializer.instance = created

    def perform_update(self, serializer):
        services.update_registered_model(serializer.instance, fields=serializer.validated_data, user=self.request.user)

    @extend_schema(parameters=[FORCE_PARAM])
    def destroy(self, request, *args, **kwargs):
        force = request.query_params.get("force", "").lower() in {"1", "true", "yes"}
        services.delete_registered_model(self.get_object(), force=force, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(parameters=[ResolveQuerySerializer], responses={200: ResolveSerializer})
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def resolve(self, request, name=None):
        """The best variant of a version (by alias or version label) for a device and its
        constraints, with its download URL; a 404 names the constraint that ruled all out.
        See docs/lifecycle.md for the ranking rule."""
        response = prepared.resolve(self, request)
        if response is not None:
            return response
        artifact, version, alias = resolve_from_query(request, self.get_object())
        artifact_data = ArtifactSerializer(artifact, context={"request": request}).data
        return Response(
            resolve_answer(
                version.registered_model.name,
                alias.name if alias else None,
                version.version,
                version.id,
                version.status,
                artifact_data,
            )
        )


def resolve_from_query(request, registered_model, alias=None):
    query = ResolveQuerySerializer(data=request.query_params)
    query.is_valid(raise_exception=True)
    constraints = query.constraints()
    if alias is not None:
        constraints["alias"] = alias
    return reads.resolve_artifact(registered_model=registered_model, **constraints)


class FilterListsOnlyMixin:
    """Query filters narrow lists; an object asked for by id is found whatever its status, so an
    archived version (hidden from default lists) stays readable, editable and restorable."""

    def filter_queryset(self, queryset):
        return super().filter_queryset(queryset) if not self.detail else queryset


class PageByIdsMixin:
    """Pages after the first find their ids first, then load those rows (joins, per-row
    subqueries) by id.

    With ``OFFSET``, PostgreSQL builds every row it skips: page 7 of 50 joined 350 artifacts to
    their versions, models and users to show 50. The ids query reads only what filters and
    ordering need; the rows query touches 50 rows by primary key. Two queries, whatever the size.
    The first page skips nothing, so it reads its rows in one query.
    """

    def list(self, request, *args, **kwargs):
        if self.paginator is not None and request.query_params.get(self.paginator.page_query_param, "1") == "1":
            return super().list(request, *args, **kwargs)
        queryset = self.filter_queryset(self.get_queryset())
        ids = self.paginate_queryset(queryset.values_list("pk", flat=True))
        if ids is None:  # no paginator: in_bulk(None) would load every row
            return super().list(request, *args, **kwargs)
        rows = self.get_queryset().order_by().in_bulk(ids)
        page = [rows[pk] for pk in ids if pk in rows]  # a row deleted in between is left out
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class ModelVersionViewSet(
    IdempotentCreateMixin, PreparedListMixin, PageByIdsMixin, FilterListsOnlyMixin, viewsets.ModelViewSet
):
    """Versions of registered models. Deleting a version deletes its artifacts and their files."""

    serializer_class = ModelVersionSerializer
    prepared_params = ("registered_model", "tag", "version", "status")
    filterset_class = ModelVersionFilterSet
    search_fields = ["version", "description", "registered_model__name", "architecture", "category", "project_name"]
    ordering_fields = ["created_at", "updated_at", "version", "registered_model__name"]
    ordering = ["-created_at"]

    def get_queryset(self):
        return ModelVersion.objects.select_related("registered_model", "created_by").with_totals()

    def perform_create(self, serializer):
        created = services.create_version(user=self.request.user, **serializer.validated_data)
        # The totals the list shows (``with_totals``): a version just made has no variants.
        created.artifact_count, created.total_size = 0, None
        serializer.instance = created

    def perform_update(self, serializer):
        fields = {k: v for k, v in serializer.validated_data.items() if k != "registered_model"}
        services.update_version(serializer.instance, fields=fields, user=self.request.user)

    def perform_destroy(self, instance):
        services.delete_version(instance, user=self.request.user)

    def _set_status(self, request, new_status):
        version = self.get_object()
        services.update_version(version, fields={"status": new_status}, user=request.user)
        return Response(self.get_serializer(self.get_queryset().get(pk=version.pk)).data)

    @extend_schema(request=None, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"], permission_classes=[ChangePermissions])
    def archive(self, request, pk=None):
        """Archive the version: it leaves default lists and cannot be an alias target; nothing is deleted."""
        return self._set_status(request, ModelVersion.Status.ARCHIVED)

    @extend_schema(request=None, responses={200: ModelVersionSerializer})
    @action(detail=True, methods=["post"], permission_classes=[ChangePermissions])
    def restore(self, request, pk=None):
        """Make an archived or deprecated version active again."""
        return self._set_status(request, ModelVersion.Status.ACTIVE)


class RegisteredModelVersionViewSet(ModelVersionViewSet):
    """One version by its registered model's name and its version label, in one request
    (``/registered-models/{name}/versions/{version}/``), for clients that know both."""

    def lookup_queryset(self):
        return self.get_queryset().filter(registered_model__name=self.kwargs["name"], version=self.kwargs["version"])

    def get_object(self):
        version = get_object_or_404(self.lookup_queryset())
        self.check_object_permissions(self.request, version)
        return version

    @extend_schema(operation_id="registered_models_versions_retrieve")
    def retrieve(self, request, *args, **kwargs):
        """A version of a registered model, by the model's name and the version's label."""
        response = prepared.one(self, request)
        return response if response is not None else super().retrieve(request, *args, **kwargs)


class ArtifactViewSet(
    IdempotentCreateMixin,
    PreparedListMixin,
    PageByIdsMixin,
    FilterListsOnlyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Artifacts: one model file per precision, target device and format of a version.

    Create with a multipart upload (the file and its metadata in one request); the registered
    model and version are created when needed. The file itself cannot be replaced: register a new
    version instead, so what was once downloaded under an id never changes.
    """

    serializer_class = ArtifactSerializer
    filterset_class = ArtifactFilterSet
    prepared_params = ("registered_model", "version", "precision", "target_device", "target_device_type", "format")
    parser_classes = [StreamingMultiPartParser, FormParser, JSONParser]
    search_fields = [
        "version__registered_model__name",
        "version__version",
        "version__description",
        "version__architecture",
        "version__category",
        "version__project_name",
        "precision",
        "target_device",
        "format",
    ]
    ordering_fields = [
        "created_at",
        "updated_at",
        "score",
        "size",
        "precision",
        "target_device",
        "version__version",
        "version__registered_model__name",
    ]
    ordering = ["-created_at"]

    def get_queryset(self):
        if self.action == "list":
            return Artifact.objects.for_list()
        return Artifact.objects.with_version()

    def upload_precheck(self, fields, content_type=""):
        """Run by the upload parsers before a file streams in (see uploads.StreamingMultiPartParser
        and uploads.StreamingFileParser)."""
        if self.action == "create":
            services.check_upload_precheck(fields)

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
        services.update_artifact(serializer.instance, artifact_fields=serializer.validated_data, user=self.request.user)

    def destroy(self, request, *args, **kwargs):
        services.delete_artifact(self.get_object(), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            (206, "application/octet-stream"): OpenApiTypes.BINARY,
        },
        parameters=[
            OpenApiParameter(
                "Range", OpenApiTypes.STR, OpenApiParameter.HEADER, description="bytes=START-END for a partial download"
            ),
            OpenApiParameter(
                "mode",
                OpenApiTypes.STR,
                enum=["proxy", "redirect"],
                description="redirect: 302 to a short-lived presigned S3 URL; "
                "proxy: stream through the registry. Default: "
                "REGISTRY_DOWNLOAD_MODE.",
            ),
        ],
    )
    @action(detail=True, methods=["get"], filter_backends=[], pagination_class=None)
    def download(self, request, pk=None):
        """The artifact's file, streamed, with its sha256 as ETag and Digest; supports Range.

        In redirect mode (and on S3) the answer is a 302 to a presigned URL instead, so the bytes
        go from the bucket to the client without passing through the registry.
        """
        mode = request.query_params.get("mode") or settings.REGISTRY_DOWNLOAD_MODE
        if mode not in ("proxy", "redirect"):
            raise ValidationError({"mode": ["Must be proxy or redirect."]})
        return download_response(request, self.get_object(), mode)


class RawUploadMetadata(SimpleMetadata):
    """OPTIONS on the raw upload URL. DRF describes a PUT by the object it would replace
    (``get_object()``), but a PUT here creates, like the POST, from a body that is the file
    itself: there is no form to describe."""

    def determine_actions(self, request, view):
        return {}


@extend_schema_view(
    create=extend_schema(
        request={"application/octet-stream": OpenApiTypes.BINARY},
        parameters=[RawUploadQuerySerializer],
        responses={201: ArtifactSerializer},
    )
)
class ArtifactFileUploadViewSet(ArtifactViewSet):
    """Register a model file sent as the raw request body: ``curl -T model.xml
    ".../api/v1/artifacts/upload/?registered_model=yolo&version=3&precision=INT8"`` (curl puts the
    file's name after the last slash). PUT or POST; the metadata fields are those of the multipart
    upload, in the query string. For big files this costs the server less than a multipart form.
    """

    parser_classes = [StreamingFileParser]
    permission_classes = [CreatePermissions]
    metadata_class = RawUploadMetadata


class AliasViewSet(IdempotentCreateMixin, viewsets.GenericViewSet):
    """Named pointers of a registered model to its versions (``production``, ``staging``, ...).

    Writes to aliases in REGISTRY_PROTECTED_ALIASES need the ``promote_alias`` permission, others
    ``change_alias``. Every set, move, rollback and delete is kept in the alias's history.
    """

    serializer_class = AliasSerializer
    permission_classes = [AliasPermissions]
    queryset = None
    filter_backends = []

    def registered_model(self):
        return get_object_or_404(RegisteredModel, name=self.kwargs["name"])

    def get_queryset(self):
        return (
            self.registered_model().aliases.select_related("registered_model", "version", "updated_by").order_by("name")
        )

    def get_object(self):
        return get_object_or_404(self.get_queryset(), name=normalize_alias_name(self.kwargs["alias"]))

    def list(self, request, name=None):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def retrieve(self, request, name=None, alias=None):
        return Response(self.get_serializer(self.get_object()).data)

    def _set(self, request, alias_name, created_status):
        registered = self.registered_model()
        body = AliasWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        alias, event = services.set_alias(
            registered_model=registered,
            name=alias_name,
            version=body.target(registered),
            user=request.user,
            reason=body.validated_data.get("reason", ""),
        )
        alias.refresh_from_db()
        code = created_status if event is not None and event.action == AliasEvent.Action.SET else status.HTTP_200_OK
        return Response(self.get_serializer(alias).data, status=code)

    @extend_schema(request=AliasWriteSerializer, responses={200: AliasSerializer, 201: AliasSerializer})
    def create(self, request, name=None):
        """Set an alias named in the body (``{"name": "staging", "version": "3"}``)."""
        if not isinstance(request.data, dict):
            raise ValidationError({"non_field_errors": ["Expected a JSON object."]})
        if not request.data.get("name"):
            raise ValidationError({"name": ["This field is required."]})
        return self._set(request, request.data["name"], status.HTTP_201_CREATED)

    @extend_schema(request=AliasWriteSerializer, responses={200: AliasSerializer, 201: AliasSerializer})
    def update(self, request, name=None, alias=None):
        """Set or move this alias to a version (``{"version": "3", "reason": "..."}``)."""
        return self._set(request, alias, status.HTTP_201_CREATED)

    @extend_schema(request=AliasReasonSerializer)
    def destroy(self, request, name=None, alias=None):
        body = AliasReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        services.delete_alias(
            registered_model=self.registered_model(),
            name=alias,
            user=request.user,
            reason=body.validated_data.get("reason", ""),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=AliasReasonSerializer, responses={200: AliasSerializer})
    def rollback(self, request, name=None, alias=None):
        """Move the alias back to the version it pointed at before its latest move."""
        body = AliasReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        moved, _ = services.rollback_alias(
            registered_model=self.registered_model(),
            name=alias,
            user=request.user,
            reason=body.validated_data.get("reason", ""),
        )
        moved.refresh_from_db()
        return Response(self.get_serializer(moved).data)

    @extend_schema(responses={200: AliasEventSerializer(many=True)})
    def history(self, request, name=None, alias=None):
        """Every set, move, rollback and delete of this alias, newest first (kept after a delete)."""
        events = (
            AliasEvent.objects.filter(registered_model=self.registered_model(), alias=normalize_alias_name(alias))
            .select_related("user")
            .order_by("-at", "-id")
        )
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AliasEventSerializer(page, many=True).data)

    @extend_schema(
        parameters=[ResolveQuerySerializer], responses={(200, "application/octet-stream"): OpenApiTypes.BINARY}
    )
    def download(self, request, name=None, alias=None):
        """The file of the best variant of the version the alias points at (same constraints and
        ranking as ``resolve``); X-Registry-Version and X-Registry-Artifact tell what was sent."""
        artifact, version, _ = resolve_from_query(request, self.registered_model(), alias=alias)
        response = artifact_file_response(request, artifact)
        response["X-Registry-Version"] = version.version
        response["X-Registry-Artifact"] = str(artifact.id)
        return response


class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The append-only log of every write: read and filter only; nothing here changes an entry."""

    serializer_class = AuditEntrySerializer
    filterset_class = AuditEntryFilterSet
    queryset = AuditEntry.objects.all()
    search_fields = ["object_repr", "actor_name"]
    ordering_fields = ["at"]
    ordering = ["-at", "-id"]


class CompareView(APIView):
    """Compare 2 to 20 versions (``?versions=id,id``) or artifacts (``?artifacts=id,id``) field by
    field; the first is the baseline for deltas."""

    permission_classes = [ReadOnly]

    @extend_schema(
        parameters=[
            OpenApiParameter("versions", OpenApiTypes.STR, description="Comma-separated version ids"),
            OpenApiParameter("artifacts", OpenApiTypes.STR, description="Comma-separated artifact ids"),
        ],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request):
        def ids(key):
            raw = request.query_params.get(key)
            return None if raw is None else [i.strip() for i in raw.split(",") if i.strip()]

        return Response(reads.compare(versions=ids("versions"), artifacts=ids("artifacts")))


class UploadSessionViewSet(IdempotentCreateMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Direct uploads of big files to S3 in parts, through presigned URLs.

    1. ``POST /uploads/`` with the registration metadata, ``filename``, ``size`` (and optionally
       ``sha256``): answers the part size and one presigned URL per part.
    2. ``PUT`` each part's bytes to its URL; keep the ``ETag`` header S3 answers.
    3. ``POST /uploads/{id}/complete/`` with ``{"parts": [{"part_number", "etag"}, ...]}``: the
       registry completes the upload, checks size and sha256 and registers the artifact (201).

    With ``"checksum_algorithm": "CRC32"`` in step 1, each part goes with its CRC32: ``POST
    /uploads/{id}/part-urls/`` signs the URLs for the parts' checksums, the PUTs send them as
    ``x-amz-checksum-crc32``, and ``complete`` names each part's ``checksum_crc32``.

    ``GET /uploads/{id}/parts/`` lists the parts S3 has received, to resume an interrupted
    upload. ``DELETE /uploads/{id}/`` aborts. On local-file storage every call answers 501.
    """

    serializer_class = UploadSessionSerializer
    permission_classes = [CanAddArtifacts]  # a user sees only the uploads they started
    parser_classes = [JSONParser]
    filter_backends = []
    pagination_class = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return UploadSession.objects.none()
        return UploadSession.objects.filter(created_by=self.request.user)

    @extend_schema(request=DirectUploadSerializer, responses={201: StartedUploadSerializer})
    def create(self, request, *args, **kwargs):
        upload = DirectUploadSerializer(data=request.data)
        upload.is_valid(raise_exception=True)
        version_fields, artifact_fields = upload.split()
        data = upload.validated_data
        session = direct_uploads.start_direct_upload(
            user=request.user,
            model_name=data["registered_model"],
            version=data["version"],
            size=data["size"],
            filename=data["filename"],
            content_type=data.get("content_type", ""),
            sha256=data.get("sha256", ""),
            checksum_algorithm=data.get("checksum_algorithm", ""),
            version_fields=version_fields,
            artifact_fields=artifact_fields,
        )
        body = {
            **self.get_serializer(session).data,
            "parts": direct_uploads.direct_upload_part_urls(session),
            "complete_url": request.build_absolute_uri(f"{request.path.rstrip('/')}/{session.id}/complete/"),
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=CompleteUploadSerializer, responses={201: ArtifactSerializer})
    @action(detail=True, methods=["post"])
    def complete(self, request, pk=None):
        parts = CompleteUploadSerializer(data=request.data)
        parts.is_valid(raise_exception=True)
        artifact = direct_uploads.complete_direct_upload(
            self.get_object(),
            parts=parts.validated_data["parts"],
            sha256=parts.validated_data.get("sha256", ""),
            user=request.user,
        )
        artifact = Artifact.objects.with_version().get(pk=artifact.pk)
        body = ArtifactSerializer(artifact, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"Location": body["download_url"]})

    @extend_schema(request=PartURLsRequestSerializer, responses={200: PartURLsSerializer})
    @action(detail=True, methods=["post"], url_path="part-urls")
    def part_urls(self, request, pk=None):
        """Presigned URLs for parts of an upload with part checksums, each signed for the CRC32
        given with it: PUT the part with that checksum as ``x-amz-checksum-crc32``."""
        parts = PartURLsRequestSerializer(data=request.data)
        parts.is_valid(raise_exception=True)
        urls = direct_uploads.sign_direct_upload_parts(self.get_object(), parts=parts.validated_data["parts"])
        return Response({"parts": urls})

    @extend_schema(responses={200: ReceivedPartsSerializer})
    @action(detail=True, methods=["get"])
    def parts(self, request, pk=None):
        """The parts S3 has received so far, with their sizes and ETags: a client resuming an
        upload sends the others, then completes with all of them."""
        return Response({"parts": direct_uploads.direct_upload_received_parts(self.get_object())})

    def destroy(self, request, *args, **kwargs):
        direct_uploads.abort_direct_upload(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
