"""Blobs pushed over the OCI distribution API: streamed to storage, hashed on the way, checked
against the digest the client names, and registered as a variant when a manifest claims them.

A push sends each blob first (in one request, or in chunks over several), then the manifest.
Until the manifest arrives a blob is a ``BlobUpload`` row and an object under
``artifacts/<upload id>/``; the upload's id becomes the artifact's, so the key follows the same
rule as every other upload route. A chunked upload keeps one object per chunk (a hash cannot be
carried from one request to the next, nor between replicas) and joins them, hashing, when the
last chunk arrives; an upload of one chunk is used as it is.

Nothing here speaks HTTP: ``models_app.oci`` parses requests and maps ``BlobUploadError`` to the
distribution API's error codes.
"""

import hashlib
import logging
from datetime import timedelta
from types import SimpleNamespace

from django.conf import settings
from django.utils import timezone

from . import downloads, services, storage
from .errors import FileTooLarge
from .models import Artifact, BlobUpload
from .storage.multipart import S3MultipartWriter, aborting_on_failure
from .uploads import READ_CHUNK, StoredUpload, part_size_for

logger = logging.getLogger(__name__)


class BlobUploadError(Exception):
    """A push the registry refuses; ``code`` is the distribution API's error code for it."""

    def __init__(self, code, message, detail=None):
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail


# The storage and download calls of this module, in one place.


def delete_objects(keys):
    """Delete stored objects; failures are logged and left for the prune commands."""
    storage.delete_files([key for key in keys if key])


def read_object(key, size, start=0, end=None, chunk_size=READ_CHUNK):
    """Bytes [start, end] of a stored object, streamed (ranged reads on S3, as downloads do)."""
    return downloads.iter_artifact(_stored(key, size), start, end, chunk_size)


def presigned_url(key, filename):
    """A short-lived URL the client can fetch the object from, or None on local files."""
    return storage.presigned_download_url(key, filename=filename)


def _stored(key, size, filename="blob"):
    """What the download helpers read of an artifact, for an object that is not (yet) one."""
    return SimpleNamespace(file=SimpleNamespace(name=key), size=size, download_filename=filename)


def _s3_writer(key, part_size):
    return S3MultipartWriter.for_name(key, part_size)


def read_body(request):
    """The request body in pieces, as it arrives: never the whole blob in memory."""
    while chunk := request.read(READ_CHUNK):
        yield chunk


class _HashedChunks:
    """Counts and hashes chunks as they pass, refusing more than REGISTRY_MAX_UPLOAD_BYTES.

    Has the ``chunks()`` of a Django File, so FileSystemStorage writes it without a copy.
    """

    def __init__(self, chunks, name, already=0):
        self.source, self.name = chunks, name
        self.sha256, self.size, self.already = hashlib.sha256(), 0, already

    def chunks(self, chunk_size=None):
        for chunk in self.source:
            self.size += len(chunk)
            if self.already + self.size > settings.REGISTRY_MAX_UPLOAD_BYTES:
                raise FileTooLarge(settings.REGISTRY_MAX_UPLOAD_BYTES)
            self.sha256.update(chunk)
            yield chunk


def write_object(key, chunks, *, expected_size=None, already=0):
    """Write ``chunks`` to storage under ``key``, hashing on the way; returns (key, size, sha256).

    On S3 the bytes go into a multipart upload part by part (memory: a few parts); on local files
    straight into the file. Whatever fails, nothing of the object stays behind.
    """
    if expected_size and already + expected_size > settings.REGISTRY_MAX_UPLOAD_BYTES:
        raise FileTooLarge(settings.REGISTRY_MAX_UPLOAD_BYTES)  # before a byte is read
    hashed = _HashedChunks(chunks, key, already)
    if storage.is_s3():
        writer = _s3_writer(key, part_size_for(expected_size or settings.REGISTRY_MAX_UPLOAD_BYTES))
        with aborting_on_failure(writer.abort):
            for chunk in hashed.chunks():
                writer.write(chunk)
            writer.close()
    else:
        try:
            key = storage.save_file(key, hashed)
        except BaseException:
            delete_objects([key])
            raise
    return key, hashed.size, hashed.sha256.hexdigest()


def parse_digest(digest):
    """The hex of a ``sha256:<64 hex>`` digest; other algorithms and malformed digests are refused."""
    algorithm, _, hexdigest = (digest or "").partition(":")
    if algorithm != "sha256" or len(hexdigest) != 64 or any(c not in "0123456789abcdef" for c in hexdigest):
        raise BlobUploadError("DIGEST_INVALID", f"{digest or 'An empty digest'} is not a sha256 digest.")
    return hexdigest


def start_upload(*, repository, user=None):
    """Open an upload session for a blob of ``repository`` (a registered model's name)."""
    return BlobUpload.objects.create(
        repository=repository, created_by=user if user is not None and user.is_authenticated else None
    )


def append_chunk(upload, chunks, *, start=None, expected_size=None):
    """Store the next chunk of an upload. ``start`` is where the client says the chunk begins
    (Content-Range); it must be where the previous one ended."""
    if upload.state != BlobUpload.State.UPLOADING:
        raise BlobUploadError("BLOB_UPLOAD_INVALID", "This upload is complete.")
    if start is not None and start != upload.offset:
        raise BlobUploadError(
            "BLOB_UPLOAD_INVALID",
            f"The chunk starts at {start}, but {upload.offset} bytes have arrived.",
            {"offset": upload.offset},
        )
    key, size, sha256 = write_object(
        f"artifacts/{upload.id}/chunk-{upload.offset}", chunks, expected_size=expected_size, already=upload.offset
    )
    if size == 0:
        delete_objects([key])
        return upload
    chunk = {"key": key, "offset": upload.offset, "size": size, "sha256": sha256}
    # Two requests appending to the same upload at once: only one may move the offset.
    moved = BlobUpload.objects.filter(pk=upload.pk, offset=upload.offset, state=BlobUpload.State.UPLOADING).update(
        offset=upload.offset + size, chunks=[*upload.chunks, chunk], updated_at=timezone.now()
    )
    if not moved:
        delete_objects([key])
        raise BlobUploadError("BLOB_UPLOAD_INVALID", "Another chunk of this upload arrived at the same time.")
    upload.refresh_from_db()
    return upload


def finish_upload(upload, *, digest, chunks=None, expected_size=None):
    """Store the last chunk (``chunks``, possibly empty), join the chunks and check the digest.

    The sha256 is that of the bytes as they arrived, computed while they streamed; a blob whose
    digest differs from ``digest`` is deleted, with its upload, and refused (DIGEST_INVALID). An
    upload ``prune_uploads`` removed while its last bytes arrived is refused (BLOB_UPLOAD_UNKNOWN),
    and the blob they made deleted.
    """
    hexdigest = parse_digest(digest)
    if upload.state != BlobUpload.State.UPLOADING:
        raise BlobUploadError("BLOB_UPLOAD_INVALID", "This upload is complete.")
    try:
        if not upload.chunks:
            key, size, sha256 = write_object(
                f"artifacts/{upload.id}/blob", chunks or iter(()), expected_size=expected_size
            )
        else:
            if chunks is not None:
                upload = append_chunk(upload, chunks, expected_size=expected_size)
            if len(upload.chunks) == 1:
                key, size, sha256 = (upload.chunks[0][k] for k in ("key", "size", "sha256"))
            else:
                parts = (piece for c in upload.chunks for piece in read_object(c["key"], c["size"]))
                key, size, sha256 = write_object(f"artifacts/{upload.id}/blob", parts, expected_size=upload.offset)
                delete_objects([c["key"] for c in upload.chunks])
    except BaseException:
        discard_upload(upload)
        raise
    if sha256 != hexdigest:
        discard_upload(upload, extra_keys=[key])
        raise BlobUploadError(
            "DIGEST_INVALID",
            f"The blob that arrived has digest sha256:{sha256}, not {digest}.",
            {"digest": f"sha256:{sha256}", "size": size},
        )
    fields = {"state": BlobUpload.State.STORED, "key": key, "sha256": sha256, "size": size, "offset": size}
    fields.update(chunks=[], updated_at=timezone.now())
    # Conditional: prune_uploads may have removed the upload as idle while its bytes arrived.
    if not BlobUpload.objects.filter(pk=upload.pk, state=BlobUpload.State.UPLOADING).update(**fields):
        if BlobUpload.objects.filter(pk=upload.pk).exists():
            # Another request finished it first, into the same object: that one is theirs.
            raise BlobUploadError("BLOB_UPLOAD_INVALID", "This upload is complete.")
        discard_upload(upload, extra_keys=[key])
        raise BlobUploadError(
            "BLOB_UPLOAD_UNKNOWN", f"There is no upload {upload.id} in progress.", {"upload": str(upload.id)}
        )
    for name, value in fields.items():
        setattr(upload, name, value)
    return upload


def discard_upload(upload, extra_keys=()):
    """Delete an upload's row and objects (a refused, cancelled or abandoned upload), and
    ``extra_keys``. Returns False, leaving the upload's objects, when the row changed or went
    since it was read: another request (a chunk, a manifest) has it now."""
    # The row goes first: a manifest registering the blob meanwhile finds it gone, and is refused.
    taken = upload.take()
    keys = [*([c["key"] for c in upload.chunks] + [upload.key] if taken else []), *extra_keys]
    # An object a variant was registered from belongs to that artifact now.
    owned = set(Artifact.objects.filter(file__in=[k for k in keys if k]).values_list("file", flat=True))
    delete_objects([k for k in keys if k not in owned])
    return taken


def stored_blob(repository, hexdigest):
    """A finished, unclaimed upload of ``repository`` with this sha256, or None."""
    return (
        BlobUpload.objects.filter(repository=repository, sha256=hexdigest, state=BlobUpload.State.STORED)
        .order_by("-created_at")
        .first()
    )


def copy_artifact_blob(artifact, *, repository, user=None):
    """A stored upload holding a copy of an artifact's file, for a manifest that names a blob the
    registry already has (a client skips pushing blobs the registry reports as present). Each
    artifact owns its object, so a second variant with the same bytes gets its own copy."""
    upload = start_upload(repository=repository, user=user)
    try:
        key, size, sha256 = write_object(
            f"artifacts/{upload.id}/blob", read_object(artifact.file.name, artifact.size), expected_size=artifact.size
        )
    except BaseException:
        upload.delete()
        raise
    upload.state, upload.key, upload.sha256, upload.size, upload.offset = (
        BlobUpload.State.STORED,
        key,
        sha256,
        size,
        size,
    )
    upload.save(update_fields=["state", "key", "sha256", "size", "offset", "updated_at"])
    return upload


def register_blob(
    upload, *, model_name, version, filename, content_type="", user=None, version_fields=None, artifact_fields=None
):
    """Register a stored upload as a variant of ``model_name`` ``version`` through the same
    service as every other upload route. The metadata is checked first, so a refused manifest
    leaves the blob in place for a corrected one; a registration that fails after that (a
    concurrent push took the variant) removes the blob and its upload."""
    fields = {
        "model_name": model_name,
        "version": version,
        "user": user,
        "version_fields": version_fields or {},
        "artifact_fields": artifact_fields or {},
        "filename": filename,
        "content_type": content_type,
    }
    services.check_artifact_registration(**fields)
    stored = StoredUpload(
        name=filename,
        stored_name=upload.key,
        artifact_id=upload.id,
        size=upload.size,
        sha256=upload.sha256,
        content_type=content_type,
    )
    # Taken before registering: prune_uploads, finding it idle meanwhile, leaves the blob alone.
    # On failure register_artifact removes the blob itself.
    if not upload.take():
        raise BlobUploadError("MANIFEST_BLOB_UNKNOWN", "The blob is gone; push it again.", {"digest": upload.sha256})
    return services.register_artifact(fileobj=stored, size=upload.size, sha256=upload.sha256, **fields)


def prune(*, older_than_hours=None, dry_run=False, log=None):
    """Delete uploads left unfinished, and pushed blobs no manifest claimed, idle longer than
    ``older_than_hours`` (REGISTRY_UPLOAD_SESSION_HOURS by default), with their objects.
    Returns how many were (or, with ``dry_run``, would be) removed."""
    hours = settings.REGISTRY_UPLOAD_SESSION_HOURS if older_than_hours is None else older_than_hours
    stale = BlobUpload.objects.filter(updated_at__lt=timezone.now() - timedelta(hours=hours))
    count = 0
    for upload in stale.iterator():
        if log:
            log(f"{'would delete' if dry_run else 'deleting'} {upload}")
        if not dry_run and not discard_upload(upload):
            if log:
                log(f"skipping {upload}: a request took it since")
            continue
        count += 1
    return count
