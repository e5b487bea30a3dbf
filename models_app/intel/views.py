"""Intel's Model Registry REST API over our data: parse, call a service, respond.

Errors use our JSON shape with Intel's status code and Intel's message text (Intel answered with
plain text and no Content-Type). Successes keep Intel's bodies exactly, including the bare id
that ``POST /models`` returns as ``text/plain``.
"""

from types import SimpleNamespace

from django.conf import settings
from django.db.models import Q
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import entries, services
from ..downloads import artifact_file_response
from ..entries import is_uuid
from ..lib import plans
from ..lib.permissions import ModelPermissions
from ..lib.renderers import ORJSONRenderer
from ..models import Artifact
from ..uploads import StreamingMultiPartParser
from .serializers import ENTRY_FIELDS, IntelError, check_id, entry, not_found, parse_entry

# Intel's list filters and how each one matches: a case-insensitive substring, `version` exactly.
FILTERS = {
    "name": "version__registered_model__name__icontains",
    "project_name": "version__project_name__icontains",
    "category": "version__category__icontains",
    "version": "version__version",
    "architecture": "version__architecture__icontains",
    "precision": "precision__icontains",
}
LIST_CHUNK = 500
NOTHING_TO_UPDATE = "Invalid request. Check the request body and ensure at least 1 supported field is provided."


@never_cache
def health(request):
    """Intel's liveness probe; like /healthz it checks nothing else (/readyz does)."""
    return JsonResponse({"status": "ok"})


class IntelPermissions(ModelPermissions):
    """Our permissions (reads open unless REGISTRY_REQUIRE_LOGIN, writes need model permissions),
    except that a trusted deployment may accept anonymous writes, as Intel's service did, with
    REGISTRY_INTEL_COMPAT_ANONYMOUS_WRITES."""

    def has_permission(self, request, view):
        if request.method not in SAFE_METHODS and settings.REGISTRY_INTEL_COMPAT_ANONYMOUS_WRITES:
            return True
        return super().has_permission(request, view)


@extend_schema(exclude=True)  # Intel's API is described in docs/intel-compatibility.md
class IntelView(APIView):
    permission_classes = [IntelPermissions]
    renderer_classes = [ORJSONRenderer]
    # The upload parser of /api/v1/: a failed parse (a client gone mid-file) aborts the file's S3
    # multipart upload, and a duplicate is refused before its file streams (upload_precheck).
    parser_classes = [StreamingMultiPartParser, FormParser, JSONParser]
    queryset = Artifact.objects.all()  # tells DjangoModelPermissions which permissions apply

    def files_url(self):
        """Builds the absolute download URL of an entry id, without a reverse() per entry."""
        prefix = self.request.build_absolute_uri(reverse("intel:model-list"))
        return lambda entry_id: f"{prefix}/{entry_id}/files"


def find_entry(entry_id):
    """The artifact behind an Intel id: its client-chosen external_id, or its UUID."""
    check_id(entry_id)
    lookup = Q(external_id=entry_id)
    if is_uuid(entry_id):
        lookup |= Q(pk=entry_id)
    artifact = Artifact.objects.with_version().filter(lookup).first()
    if artifact is None:
        raise not_found()
    return artifact


def _json_array(first, rest, files_url):
    """The list as a JSON array, streamed in batches, so every entry can be returned without
    holding them all in memory. Each entry is written as one entry's answer is (the view's
    renderer: orjson, DRF's encoder for what orjson refuses)."""
    render = ORJSONRenderer().render
    batch = [b"[", render(entry(first, files_url))]
    for artifact in rest:
        batch += [b",", render(entry(artifact, files_url))]
        if len(batch) >= 2 * LIST_CHUNK:
            yield b"".join(batch)
            batch = []
    batch.append(b"]")
    yield b"".join(batch)


def matching_entries(lookups):
    """Intel's list: the entries matching ``lookups`` (FILTERS' lookups), newest first, each with
    its version and registered model."""
    return (
        Artifact.objects.select_related("version__registered_model")
        .only(*ENTRY_FIELDS)
        .filter(**lookups)
        .order_by("-created_at", "-pk")
    )


class ModelListView(IntelView):
    def get(self, request):
        """Every matching entry, newest first: Intel capped the list at 100; we do not."""
        unknown = [key for key in request.query_params if key not in FILTERS]
        if unknown:
            raise IntelError(
                status.HTTP_422_UNPROCESSABLE_ENTITY,
                "invalid_query",
                f"Invalid query parameter(s): {', '.join(unknown)}",
            )
        lookups = {FILTERS[key]: value for key, value in request.query_params.items() if value}
        # Most lists are a model's few entries: read in one query (prepared once per set of
        # filters: models_app/lib/plans.py) and answered whole. Past a chunk, the list is
        # streamed from a server-side cursor instead. The filters are substrings: the
        # database's plan for them is the same whatever the values, so it is made once.
        key = (type(self), tuple(sorted(lookups)))
        head = plans.instances(key, matching_entries, lookups, LIST_CHUNK + 1, generic=True)
        if head is None:
            head = list(matching_entries(lookups)[: LIST_CHUNK + 1])
        if not head:
            if lookups:
                raise IntelError(status.HTTP_404_NOT_FOUND, "not_found", "Model(s) not found.")
            return Response([])
        if len(head) <= LIST_CHUNK:
            body = b"".join(_json_array(head[0], head[1:], self.files_url()))
            return HttpResponse(body, content_type="application/json")
        rows = matching_entries(lookups).iterator(chunk_size=LIST_CHUNK)
        first = next(rows, None)
        if first is None:  # every entry deleted in between: what the first read saw
            first, rows = head[0], iter(head[1:])
        return StreamingHttpResponse(_json_array(first, rows, self.files_url()), content_type="application/json")

    def upload_precheck(self, fields, content_type=""):
        """Refuse a duplicate before its file streams in (run by the upload parser when the file
        part starts). Only when the fields sent before the file pass every check Intel makes
        before its duplicate check, so those keep their precedence; anything else is left to
        ``post`` once the file is in."""
        try:
            parsed = parse_entry(fields, {"file": SimpleNamespace(content_type=content_type)}, creating=True)
        except APIException:
            return
        entries.check_new_entry(
            name=parsed["name"],
            version=parsed["version"],
            external_id=parsed["id"],
            version_fields=parsed["version_fields"],
            artifact_fields=parsed["artifact_fields"],
        )

    def post(self, request):
        """Register one entry: a variant of (a new or existing) version of a registered model."""
        parsed = parse_entry(request.data, request.FILES, creating=True)
        artifact = entries.register_entry(
            name=parsed["name"],
            version=parsed["version"],
            fileobj=parsed["file"],
            external_id=parsed["id"],
            created_date=parsed["created_date"],
            version_fields=parsed["version_fields"],
            artifact_fields=parsed["artifact_fields"],
            user=request.user,
        )
        return HttpResponse(
            artifact.public_id,
            status=status.HTTP_201_CREATED,
            content_type="text/plain; charset=utf-8",
            headers={"Location": reverse("intel:model-detail", args=[artifact.public_id])},
        )


class ModelDetailView(IntelView):
    def get(self, request, entry_id):
        return Response(entry(find_entry(entry_id), self.files_url()))

    def put(self, request, entry_id):
        """Partial update. Shared fields change the entry's version, so its sibling variants show
        them too; a new name or version moves the entry to that version."""
        artifact = find_entry(entry_id)
        parsed = parse_entry(request.data, request.FILES, creating=False)
        if not any(parsed[key] for key in ("name", "version", "created_date", "version_fields", "artifact_fields")):
            raise IntelError(status.HTTP_400_BAD_REQUEST, "nothing_to_update", NOTHING_TO_UPDATE)
        entries.change_entry(
            artifact,
            name=parsed["name"],
            version=parsed["version"],
            created_date=parsed["created_date"],
            version_fields=parsed["version_fields"],
            artifact_fields=parsed["artifact_fields"],
            user=request.user,
        )
        return Response({"status": "completed"})

    def delete(self, request, entry_id):
        """Deletes the entry and its file; a storage outage is a 503 and deletes nothing (Intel
        deleted the row anyway and logged the failure). The version stays, even when empty."""
        services.delete_artifact(find_entry(entry_id), user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ModelFilesView(IntelView):
    def get(self, request, entry_id):
        """The file, streamed, as ``application/zip`` exactly (the DL Streamer model updater
        checks it), with Content-Disposition, checksums and Range support."""
        return artifact_file_response(request, find_entry(entry_id), content_type="application/zip")
