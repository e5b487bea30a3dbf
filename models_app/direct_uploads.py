"""Direct uploads: big files go from the client to S3 through presigned part URLs; the registry
only hands out the URLs, then completes, verifies and registers what arrived (through
``services.register_artifact``, like every other upload).
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils import timezone

from .errors import ArtifactStorageError, Conflict, FileTooLarge
from .models import UploadSession
from .services import check_artifact_registration, register_artifact
from .storage import artifact_key, delete_files
from .storage.multipart import (
    PART_CHECKSUM,
    PartsRefused,
    UploadGone,
    abort_multipart,
    complete_multipart,
    object_sha256,
    presigned_part_urls,
    received_parts,
    require_s3,
    start_multipart,
    stored_object,
)
from .uploads import StoredUpload, part_size_for


def start_direct_upload(
    *,
    user,
    model_name,
    version,
    size,
    filename,
    content_type="",
    sha256="",
    checksum_algorithm="",
    version_fields=None,
    artifact_fields=None,
):
    """Check the metadata as a registration would, then open an S3 multipart upload for the file.

    With ``checksum_algorithm`` ("CRC32") the upload declares part checksums: each part is sent
    with its CRC32, which S3 checks as it arrives, and completing the upload costs S3 no pass over
    the whole object. The part URLs are then signed for each part's checksum, given by the client
    (``sign_direct_upload_parts``).

    Returns the UploadSession; ``direct_upload_part_urls`` gives the URLs to PUT the parts to.
    Raises DirectUploadUnavailable (501) on local files, FileTooLarge (413), ValidationError
    (400), Conflict (409) or ArtifactStorageError (503).
    """
    require_s3()
    if size > settings.REGISTRY_MAX_UPLOAD_BYTES:
        raise FileTooLarge(settings.REGISTRY_MAX_UPLOAD_BYTES)
    artifact_fields = dict(artifact_fields or {})
    if artifact_fields.get("derived_from") is not None:
        artifact_fields["derived_from_id"] = str(artifact_fields.pop("derived_from").pk)
    artifact_fields.pop("derived_from", None)
    version_fields = version_fields or {}
    check_artifact_registration(
        model_name=model_name,
        version=version,
        user=user,
        version_fields=version_fields,
        artifact_fields=artifact_fields,
        filename=filename,
        content_type=content_type,
    )
    session = UploadSession(
        created_by=user if user and user.is_authenticated else None,
        size=size,
        sha256=(sha256 or "").lower(),
        filename=filename[:255],
        content_type=(content_type or "")[:100],
        part_size=part_size_for(size),
        checksum_algorithm=checksum_algorithm or "",
        metadata={
            "registered_model": model_name,
            "version": version,
            "version_fields": version_fields,
            "artifact_fields": artifact_fields,
        },
        expires_at=timezone.now() + timedelta(hours=settings.REGISTRY_UPLOAD_SESSION_HOURS),
    )
    session.key = artifact_key(session.id, filename)
    session.upload_id = start_multipart(session.key, checksum=session.checksum_algorithm == PART_CHECKSUM)
    try:
        session.save(force_insert=True)
    except BaseException:
        abort_multipart(session.key, session.upload_id)
        raise
    return session


def _url_lifetime(session):
    """Seconds a part URL stays valid: until the session expires, at most the 7 days SigV4
    presigned URLs can live."""
    expires_in = max(60, int((session.expires_at - timezone.now()).total_seconds()))
    return min(expires_in, 7 * 24 * 3600)


def direct_upload_part_urls(session):
    """Presigned PUT URLs, one per part, valid until the session expires. Each URL signs its
    part's length, so S3 refuses a part of any other size as it arrives instead of the registry
    finding the wrong size only at ``complete``.

    A session with part checksums has no URL for a part before its checksum is known: its parts
    come with ``url`` None, and ``sign_direct_upload_parts`` gives them."""
    numbers = range(1, session.part_count + 1)
    if session.checksum_algorithm:
        return [{"part_number": n, "size": session.part_length(n), "url": None} for n in numbers]
    parts = [(n, session.part_length(n), None) for n in numbers]
    return presigned_part_urls(session.key, session.upload_id, parts, _url_lifetime(session))


def sign_direct_upload_parts(session, *, parts):
    """Presigned PUT URLs for the parts of a session with part checksums, each signed for the
    CRC32 its ``{"part_number", "checksum_crc32"}`` gives: S3 takes the part only with that
    checksum, and only bytes that match it.

    Raises ValidationError (400) for a session without part checksums or a part number it does
    not have; Conflict (409) once the upload is no longer pending.
    """
    if session.state != UploadSession.State.PENDING:
        raise Conflict(f"This upload is {session.state}; only a pending upload takes parts.")
    if not session.checksum_algorithm:
        raise ValidationError({"parts": ["This upload declared no part checksums; its part URLs came with it."]})
    wrong = sorted({p["part_number"] for p in parts if p["part_number"] > session.part_count})
    if wrong:
        raise ValidationError({"parts": [f"This upload has {session.part_count} parts, not {wrong[0]}."]})
    signed = [(p["part_number"], session.part_length(p["part_number"]), p["checksum_crc32"]) for p in parts]
    urls = presigned_part_urls(session.key, session.upload_id, signed, _url_lifetime(session))
    for url, part in zip(urls, parts, strict=True):
        url["checksum_crc32"] = part["checksum_crc32"]
    return urls


def direct_upload_received_parts(session):
    """The parts S3 has received for a pending upload (``[{"part_number", "size", "etag"}]``):
    what a client resuming without its own record, or with a stale one, still has to send.

    Raises Conflict (409) once the upload is completing or finished, or when S3 no longer
    knows it; ArtifactStorageError (503) when S3 cannot be reached.
    """
    if session.state != UploadSession.State.PENDING:
        raise Conflict(f"This upload is {session.state}; only a pending upload has parts to list.")
    try:
        return received_parts(session.key, session.upload_id)
    except UploadGone:
        raise Conflict("Storage no longer has this upload; start a new one.") from None


def complete_direct_upload(session, *, parts, sha256="", user=None):
    """Complete the multipart upload, verify size and sha256 of what arrived, and register it.

    ``parts`` is a list of {"part_number", "etag"} as S3 answered each PUT (with the part's
    "checksum_crc32" when the upload declared part checksums). The registry reads the object back
    and hashes it whatever the client says; ``sha256`` (the client's, known only once it has read
    the whole file) and the one the session was opened with are compared with that. On a size or
    sha256 mismatch the object is deleted and a ValidationError (400) raised; a Conflict at registration
    (the variant was taken meanwhile) deletes it too. The session ends ``completed`` or ``failed``;
    Conflict (409) when it is no longer pending, or another writer (an abort, ``prune_uploads``)
    takes it first.
    """
    sha256 = (sha256 or "").lower()
    # Claimed before S3 is asked, so no abort can drop the parts while they are being assembled.
    # A sha256 given only now is the session's expected one from here on.
    session.move(UploadSession.State.COMPLETING, **({"sha256": sha256} if sha256 and not session.sha256 else {}))
    try:
        complete_multipart(session.key, session.upload_id, parts)
    except PartsRefused as exc:
        # Wrong or missing parts: the upload stays open so the client can fix its list.
        session.move(UploadSession.State.PENDING)
        raise ValidationError({"parts": [f"S3 refused the parts: {exc}"]}) from exc
    except ArtifactStorageError:
        session.move(UploadSession.State.PENDING)
        raise
    try:
        size, etag = stored_object(session.key)
        if size != session.size:
            raise ValidationError({"size": [f"{size} bytes arrived; the upload announced {session.size}."]})
        arrived = object_sha256(session.key, etag)
        for expected in (session.sha256, sha256):
            if expected and arrived != expected:
                raise ValidationError({"sha256": [f"The file that arrived has sha256 {arrived}, not {expected}."]})
        sha256 = arrived
    except BaseException as exc:
        delete_files([session.key])
        session.move(UploadSession.State.FAILED, error=str(exc))
        raise
    stored = StoredUpload(
        name=session.filename,
        stored_name=session.key,
        artifact_id=session.id,
        size=size,
        sha256=sha256,
        content_type=session.content_type,
    )
    meta = session.metadata
    try:
        artifact = register_artifact(
            model_name=meta["registered_model"],
            version=meta["version"],
            fileobj=stored,
            user=user or session.created_by,
            version_fields=meta.get("version_fields"),
            artifact_fields=meta.get("artifact_fields"),
            size=size,
            sha256=sha256,
            filename=session.filename,
            content_type=session.content_type,
        )
    except BaseException as exc:
        session.move(UploadSession.State.FAILED, error=str(exc))
        raise
    session.move(UploadSession.State.COMPLETED, artifact=artifact)
    return artifact


def abort_direct_upload(session, *, reason="aborted by the client"):
    """Abort a pending upload: S3 drops the parts sent so far.

    Raises Conflict (409) when the upload is no longer pending, even if it was when ``session``
    was read: a completion claimed it meanwhile, and its parts must stay. ArtifactStorageError
    (503) when S3 cannot be reached; the upload is pending again then, so the abort can be retried.
    """
    # Claimed before S3 is asked, so a completion starting now finds the upload aborted.
    session.move(UploadSession.State.ABORTED, error=reason)
    try:
        abort_multipart(session.key, session.upload_id)
    except ArtifactStorageError:
        session.move(UploadSession.State.PENDING, error="")
        raise


def fail_stalled_completion(session):
    """Fail an upload whose completion has been running for longer than
    ``REGISTRY_UPLOAD_COMPLETING_MINUTES``: its process died mid-way, and nothing else would ever
    move it on. S3 drops the parts if it still has the upload. If S3 had already assembled the
    file, the object has no artifact row and ``prune_artifacts`` removes it.

    Raises Conflict (409) when the completion finished first (it is not ``completing`` any more);
    ArtifactStorageError (503) when S3 cannot be reached, the upload being failed all the same,
    so a later ``prune_uploads`` finds it as a stray multipart upload.
    """
    session.move(UploadSession.State.FAILED, error="The upload stalled while completing.")
    abort_multipart(session.key, session.upload_id)


def stalled_completions():
    """Sessions ``completing`` for longer than ``REGISTRY_UPLOAD_COMPLETING_MINUTES``."""
    cutoff = timezone.now() - timedelta(minutes=settings.REGISTRY_UPLOAD_COMPLETING_MINUTES)
    return UploadSession.objects.filter(state=UploadSession.State.COMPLETING).filter(
        Q(moved_at__lt=cutoff) | Q(moved_at__isnull=True, created_at__lt=cutoff)
    )
