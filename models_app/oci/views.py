"""The OCI distribution API (pull, push, content discovery) over the registry's rows.

Plain Django views: the distribution API has its own error shape, status codes and headers,
and its clients send bodies no DRF parser should touch. Each view parses, calls the core
(``manifests`` for reads, ``blob_uploads`` and the services for pushes), and answers.
"""

import functools
import json
import uuid
from urllib.parse import quote, urlencode

from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from .. import blob_uploads, downloads
from ..models import Artifact, BlobUpload
from . import auth, manifests
from .errors import OCIError, error_response, oci_error_for

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_PAGE = 10_000


def oci_view(*methods):
    """Allow ``methods``, answer every error in the distribution API's shape, and add the API
    version header to every answer."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise OCIError("UNSUPPORTED", f"{request.method} is not supported here.")
                response = view(request, *args, **kwargs)
            except Exception as exc:
                error = oci_error_for(exc)
                if error is None:
                    raise
                response = error_response(error)
            for name, value in API_VERSION.items():
                response[name] = value
            return response

        return wrapper

    return decorate


def _page_args(request):
    try:
        n = request.GET.get("n")
        n = None if n in (None, "") else max(0, min(int(n), MAX_PAGE))
    except ValueError:
        raise OCIError("PAGINATION_NUMBER_INVALID", "n must be a number.") from None
    return n, request.GET.get("last") or None


def _next_link(path, n, last):
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'


@oci_view("GET", "HEAD")
def base(request):
    """``/v2/``: the API version check, and where clients learn how to authenticate.

    Without credentials it answers 401 with the bearer challenge even when reads are open, as
    Docker's registry does: Go clients (skopeo, containerd) read the challenge here once and
    would otherwise never send the credentials a push needs. An anonymous client gets an
    anonymous token from the realm and pulls with it.
    """
    if not request.headers.get("Authorization"):
        raise OCIError("UNAUTHORIZED", "Authenticate with a token from the realm.", headers=auth.challenge(request))
    auth.check_pull(request)
    return JsonResponse({})


@oci_view("GET")
def token(request):
    """The bearer-token endpoint named in the 401 challenges (``realm``)."""
    user = auth.token_user(request)
    value = auth.issue_token(user)
    return JsonResponse(
        {
            "token": value,
            "access_token": value,
            "expires_in": auth.TOKEN_SECONDS,
            "issued_at": timezone.now().isoformat(),
        }
    )


@oci_view("GET")
def catalog(request):
    auth.check_pull(request)
    n, last = _page_args(request)
    names, more = manifests.catalogue(last, n)
    response = JsonResponse({"repositories": names})
    if more and names:
        response["Link"] = _next_link(request.path, n, names[-1])
    return response


@oci_view("GET")
def tags_list(request, name):
    auth.check_pull(request, name)
    model = manifests.find_model(name)
    n, last = _page_args(request)
    tags = sorted(manifests.tag_map(model))
    if last:
        tags = [tag for tag in tags if tag > last]
    more = n is not None and len(tags) > n
    tags = tags if n is None else tags[:n]
    response = JsonResponse({"name": name, "tags": tags})
    if more and tags:
        response["Link"] = _next_link(request.path, n, tags[-1])
    return response


def _document_response(request, document, status=200):
    response = HttpResponse(b"" if request.method == "HEAD" else document.data, status=status)
    response["Content-Type"] = document.media_type
    response["Content-Length"] = str(len(document.data))
    response["Docker-Content-Digest"] = document.digest
    response["ETag"] = f'"{document.digest}"'
    return response


@oci_view("GET", "HEAD", "PUT", "DELETE")
def manifest(request, name, reference):
    if request.method == "PUT":
        return put_manifest(request, name, reference)
    if request.method == "DELETE":
        raise OCIError("UNSUPPORTED", "Delete versions and variants through /api/v1 or the admin.")
    auth.check_pull(request, name)
    model = manifests.find_model(name)
    if ":" in reference:
        blob_uploads.parse_digest(reference)
        document = manifests.documents_by_digest(model, reference)
        if document is None or document.media_type not in (manifests.MANIFEST, manifests.INDEX):
            raise OCIError("MANIFEST_UNKNOWN", f"{name} has no manifest {reference}.", {"digest": reference})
    else:
        document = manifests.document_for(model, manifests.resolve_tag(model, reference))
    return _document_response(request, document)


def _blob_response(request, key, size, filename, digest):
    """A stored blob: streamed (with Range) or, in redirect mode, a 307 to a presigned URL."""
    headers = {"Docker-Content-Digest": digest, "ETag": f'"{digest}"', "Accept-Ranges": "bytes"}
    if request.method == "HEAD":
        response = HttpResponse(b"", content_type="application/octet-stream", headers=headers)
        response["Content-Length"] = str(size)
        return response
    if settings.REGISTRY_DOWNLOAD_MODE == "redirect":
        url = blob_uploads.presigned_url(key, filename)
        if url:  # None on local files: those are always streamed
            response = HttpResponseRedirect(url, headers={**headers, "Cache-Control": "private, no-store"})
            response.status_code = 307
            return response
    byte_range = downloads.parse_range(request.headers.get("Range"), size)
    start, end = byte_range or (0, size - 1)
    chunks = blob_uploads.read_object(key, size, start, end, settings.REGISTRY_DOWNLOAD_CHUNK_BYTES)
    response = StreamingHttpResponse(chunks, content_type="application/octet-stream", headers=headers)
    response["Content-Length"] = str(max(end - start + 1, 0))
    if byte_range:
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    return response


def _bytes_response(request, data, digest, media_type):
    """A blob held in memory (a config blob), with the same Range handling as stored blobs."""
    byte_range = downloads.parse_range(request.headers.get("Range"), len(data)) if request.method == "GET" else None
    start, end = byte_range or (0, len(data) - 1)
    body = data[start : end + 1]
    response = HttpResponse(b"" if request.method == "HEAD" else body, content_type=media_type)
    response["Content-Length"] = str(len(body))
    response["Docker-Content-Digest"] = digest
    response["ETag"] = f'"{digest}"'
    response["Accept-Ranges"] = "bytes"
    if byte_range:
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    return response


@oci_view("GET", "HEAD", "DELETE")
def blob(request, name, digest):
    if request.method == "DELETE":
        raise OCIError("UNSUPPORTED", "Blobs go when their variant is deleted through /api/v1 or the admin.")
    auth.check_pull(request, name)
    model_name = manifests.model_name_of(name)
    hexdigest = blob_uploads.parse_digest(digest)
    artifact = (
        Artifact.objects.filter(version__registered_model__name=model_name, sha256=hexdigest)
        .select_related("version__registered_model")
        .order_by("created_at", "id")
        .first()
    )
    if artifact is not None:
        return _blob_response(request, artifact.file.name, artifact.size, artifact.download_filename, digest)
    pushed = blob_uploads.stored_blob(model_name, hexdigest)
    if pushed is not None:
        return _blob_response(request, pushed.key, pushed.size, hexdigest, digest)
    model = manifests.find_model(name)
    document = manifests.documents_by_digest(model, digest)
    if document is None or document.media_type != manifests.CONFIG_TYPE:
        raise OCIError("BLOB_UNKNOWN", f"{name} has no blob {digest}.", {"digest": digest})
    return _bytes_response(request, document.data, digest, document.media_type)


# --- Push ------------------------------------------------------------------------------------


def _content_length(request):
    try:
        return int(request.headers.get("Content-Length") or 0) or None
    except ValueError:
        return None


def _upload_location(name, upload):
    return f"/v2/{name}/blobs/uploads/{upload.id}"


def _upload_status(name, upload, status):
    response = HttpResponse(b"", status=status)
    response["Location"] = _upload_location(name, upload)
    response["Range"] = f"0-{max(upload.offset - 1, 0)}"
    response["Docker-Upload-UUID"] = str(upload.id)
    response["Content-Length"] = "0"
    return response


def _blob_created(name, upload):
    digest = f"sha256:{upload.sha256}"
    response = HttpResponse(b"", status=201)
    response["Location"] = f"/v2/{name}/blobs/{digest}"
    response["Docker-Content-Digest"] = digest
    response["Content-Length"] = "0"
    return response


@oci_view("POST")
def start_upload(request, name):
    """Open a blob upload; with ``?digest=`` the body is the whole blob (monolithic upload).

    ``?mount=`` (a cross-repository mount) is answered with a new upload session, the fallback
    the spec allows: each variant owns its file, so a blob is never shared between models.
    """
    user = auth.check_push(request, name)
    model_name = manifests.model_name_of(name)
    digest = request.GET.get("digest")
    if digest:
        blob_uploads.parse_digest(digest)
    upload = blob_uploads.start_upload(repository=model_name, user=user)
    if digest:
        upload = blob_uploads.finish_upload(
            upload, digest=digest, chunks=blob_uploads.read_body(request), expected_size=_content_length(request)
        )
        return _blob_created(name, upload)
    return _upload_status(name, upload, 202)


def _find_upload(name, upload_id, user):
    model_name = manifests.model_name_of(name)
    try:
        upload_id = uuid.UUID(upload_id)
    except ValueError:
        upload = None
    else:
        upload = BlobUpload.objects.filter(
            pk=upload_id, repository=model_name, state=BlobUpload.State.UPLOADING, created_by=user
        ).first()
    if upload is None:
        raise OCIError(
            "BLOB_UPLOAD_UNKNOWN", f"There is no upload {upload_id} in progress.", {"upload": str(upload_id)}
        )
    return upload


def _content_range_start(request, upload):
    """Where a chunk starts, from its Content-Range (``<start>-<end>``), or None without one."""
    header = request.headers.get("Content-Range")
    if not header:
        return None
    first, _, last = header.removeprefix("bytes ").removeprefix("bytes=").partition("-")
    try:
        start, end = int(first), int(last)
    except ValueError:
        raise OCIError("BLOB_UPLOAD_INVALID", f"Content-Range {header} is not <start>-<end>.", status=400) from None
    length = _content_length(request)
    if start != upload.offset or end < start or (length is not None and length != end - start + 1):
        raise OCIError(
            "BLOB_UPLOAD_INVALID",
            f"The chunk {header} does not follow the {upload.offset} bytes received so far.",
            {"offset": upload.offset},
            headers={"Range": f"0-{max(upload.offset - 1, 0)}"},
        )
    return start


@oci_view("GET", "HEAD", "PATCH", "PUT", "DELETE")
def upload(request, name, upload_id):
    """One upload: its status (GET/HEAD), a chunk (PATCH), the last chunk and the digest (PUT),
    or cancelling it (DELETE)."""
    user = auth.check_push(request, name)
    upload = _find_upload(name, upload_id, user)
    if request.method in ("GET", "HEAD"):
        return _upload_status(name, upload, 204)
    if request.method == "DELETE":
        blob_uploads.discard_upload(upload)
        return HttpResponse(status=204)
    if request.method == "PATCH":
        start = _content_range_start(request, upload)
        upload = blob_uploads.append_chunk(
            upload, blob_uploads.read_body(request), start=start, expected_size=_content_length(request)
        )
        return _upload_status(name, upload, 202)
    if request.headers.get("Content-Range"):
        _content_range_start(request, upload)
    upload = blob_uploads.finish_upload(
        upload,
        digest=request.GET.get("digest", ""),
        chunks=blob_uploads.read_body(request) if _content_length(request) else None,
        expected_size=_content_length(request),
    )
    return _blob_created(name, upload)


def _annotation(annotations, key):
    value = annotations.get(manifests.ANNOTATION + key)
    return value.strip() if isinstance(value, str) else None


def _registration_fields(annotations):
    """Artifact and version fields from a pushed manifest's ``org.model-registry.*`` annotations."""
    artifact_fields, version_fields = {}, {}
    for key, field in manifests.ARTIFACT_ANNOTATIONS.items():
        value = _annotation(annotations, key)
        if value:
            artifact_fields[field] = value
    if "score" in artifact_fields:
        try:
            artifact_fields["score"] = float(artifact_fields["score"])
        except ValueError:
            raise OCIError("MANIFEST_INVALID", "The score annotation must be a number.", {"score": "number"}) from None
    for key, field in manifests.VERSION_ANNOTATIONS.items():
        value = _annotation(annotations, key)
        if value:
            version_fields[field] = value
    if "labels" in version_fields:
        raw = version_fields["labels"]
        try:
            labels = json.loads(raw) if raw.startswith("[") else [x.strip() for x in raw.split(",") if x.strip()]
        except ValueError:
            raise OCIError("MANIFEST_INVALID", "The labels annotation must be a JSON list or a comma list.") from None
        version_fields["labels"] = labels
    return artifact_fields, version_fields


def _read_manifest(request):
    """The pushed manifest or index, parsed; its media type must be one of the two."""
    media_type = request.content_type or ""
    if media_type not in (manifests.MANIFEST, manifests.INDEX):
        raise OCIError(
            "MANIFEST_INVALID", f"Push {manifests.MANIFEST} or {manifests.INDEX}, not {media_type or 'untyped'}."
        )
    length = _content_length(request) or 0
    if length > MAX_MANIFEST_BYTES:
        raise OCIError("SIZE_INVALID", f"A manifest may have at most {MAX_MANIFEST_BYTES} bytes.", status=413)
    try:
        document = json.loads(request.read(MAX_MANIFEST_BYTES + 1))
    except ValueError:
        raise OCIError("MANIFEST_INVALID", "The manifest is not JSON.") from None
    if not isinstance(document, dict):
        raise OCIError("MANIFEST_INVALID", "The manifest is not a JSON object.")
    return media_type, document


def _only_layer(document):
    layers = document.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise OCIError("MANIFEST_INVALID", "A variant's manifest has exactly one layer: the model file.")
    return layers[0]


def _version_named(annotations, reference):
    version = _annotation(annotations, "version") or ("" if ":" in reference else reference)
    if not version:
        raise OCIError("MANIFEST_INVALID", "Name the version: push to a tag, or annotate org.model-registry.version.")
    return version


def _created(name, document):
    response = HttpResponse(b"", status=201)
    response["Location"] = f"/v2/{name}/manifests/{quote(document.digest)}"
    response["Docker-Content-Digest"] = document.digest
    response["Content-Length"] = "0"
    return response


def put_index(name, reference, document):
    """Accept an index whose variants have all been pushed (a copy of a version from another
    registry: ``skopeo copy --all``). Each entry is matched to a variant of the version by its
    precision, device and format annotations; the answer names the registry's own index."""
    model = manifests.find_model(name)
    version = _version_named(document.get("annotations") or {}, reference)
    found = model.versions.filter(version=version).prefetch_related("artifacts").first()
    if found is None:
        raise OCIError("MANIFEST_BLOB_UNKNOWN", f"Push the variants of version {version} before its index.")
    have = {(a.precision, a.target_device, a.format) for a in found.artifacts.all()}
    for entry in document.get("manifests") or []:
        annotations = entry.get("annotations") or {} if isinstance(entry, dict) else {}
        key = _variant_key(_registration_fields(annotations)[0])
        if key not in have:
            raise OCIError(
                "MANIFEST_BLOB_UNKNOWN",
                f"Version {version} has no {'/'.join(key)} variant; push its manifest before the index.",
                {"digest": entry.get("digest") if isinstance(entry, dict) else None},
            )
    return _created(name, manifests.document_for(model, found))


def _pushed_blob(model_name, layer, user):
    """The stored upload a manifest's layer names; a copy when the registry already holds those
    bytes as another variant's file (clients skip pushing blobs the registry reports present)."""
    digest = layer.get("digest", "")
    hexdigest = blob_uploads.parse_digest(digest)
    pushed = blob_uploads.stored_blob(model_name, hexdigest)
    if pushed is None:
        existing = Artifact.objects.filter(sha256=hexdigest).order_by("created_at", "id").first()
        if existing is None:
            raise OCIError("MANIFEST_BLOB_UNKNOWN", f"Push the blob {digest} before the manifest.", {"digest": digest})
        pushed = blob_uploads.copy_artifact_blob(existing, repository=model_name, user=user)
    if layer.get("size") != pushed.size:
        raise OCIError("MANIFEST_INVALID", f"The layer's size is {layer.get('size')}, the blob has {pushed.size}.")
    return pushed


def put_manifest(request, name, reference):
    """Register the pushed file as a variant; the answer names the registry's own manifest of
    it (built from the rows like every served manifest, so its digest is not the pushed one's)."""
    user = auth.check_push(request, name)
    model_name = manifests.model_name_of(name)
    media_type, document = _read_manifest(request)
    if media_type == manifests.INDEX:
        return put_index(name, reference, document)
    layer = _only_layer(document)
    annotations = {**(layer.get("annotations") or {}), **(document.get("annotations") or {})}
    version = _version_named(annotations, reference)
    artifact_fields, version_fields = _registration_fields(annotations)
    pushed = _pushed_blob(model_name, layer, user)
    title = (layer.get("annotations") or {}).get(manifests.TITLE) or "model.bin"
    same = _same_variant(model_name, version, artifact_fields, pushed.sha256)
    if same is not None:  # a push repeated: the variant is there with these very bytes
        blob_uploads.discard_upload(pushed)
        artifact = same
    else:
        artifact = blob_uploads.register_blob(
            pushed,
            model_name=model_name,
            version=version,
            filename=title,
            content_type=str(layer.get("mediaType") or "")[:100],
            user=user,
            version_fields=version_fields,
            artifact_fields=artifact_fields,
        )
    config = (document.get("config") or {}).get("digest", "")
    if config.startswith("sha256:") and config[7:] != pushed.sha256:
        leftover = blob_uploads.stored_blob(model_name, config[7:])
        if leftover is not None:  # the client's own config blob: the registry serves its own
            blob_uploads.discard_upload(leftover)
    artifact = Artifact.objects.select_related("version__registered_model").get(pk=artifact.pk)
    return _created(name, manifests.document_for(artifact.version.registered_model, artifact))


def _variant_key(artifact_fields):
    """(precision, target device, format) as a registration would store them, defaults included."""

    def field(name):
        return (artifact_fields.get(name) or Artifact._meta.get_field(name).default).strip()

    return field("precision").upper(), field("target_device").upper(), field("format").lower()


def _same_variant(model_name, version, artifact_fields, sha256):
    """The variant a manifest would register, when it exists with the same file."""
    precision, device, fmt = _variant_key(artifact_fields)
    return Artifact.objects.filter(
        version__registered_model__name=model_name,
        version__version=version,
        precision=precision,
        target_device=device,
        format=fmt,
        sha256=sha256,
    ).first()


@oci_view("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
def unknown(request, path=""):
    raise OCIError("UNSUPPORTED", f"/v2/{path} is not part of this registry's distribution API.", status=404)
