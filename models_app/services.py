"""Writes that touch several rows or the object storage.

The rules that keep the registry consistent live here:
- a file is streamed to storage *before* its row is written, outside any transaction, and is
  removed again if the row cannot be written; a storage failure leaves no row;
- files are deleted only after the rows that point at them are gone (``on_commit``);
- uniqueness is enforced by database constraints, so concurrent writers get a clean 409.
"""

import hashlib
import logging
import uuid

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.text import get_valid_filename

from .errors import ArtifactStorageError, Conflict, RangeNotSatisfiable
from .models import Artifact, ModelVersion, RegisteredModel
from .storage import artifact_storage, current_storage, is_s3

logger = logging.getLogger(__name__)

STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)

VERSION_FIELDS = (
    "description", "architecture", "category", "labels", "overview",
    "project_id", "project_name", "origin", "tags", "provenance",
)
ARTIFACT_FIELDS = (
    "precision", "target_device", "target_device_type", "format", "score",
    "optimization_capabilities", "external_id", "derived_from",
)


def artifact_key(artifact_id, filename):
    """Storage key built from the artifact's id: a client's file name can never pick the path.

    The cleaned file name is kept at the end only so the bucket stays readable for humans.
    """
    name = get_valid_filename(str(filename).replace("\\", "/").rsplit("/", 1)[-1])[:100].lstrip(".")
    return f"artifacts/{artifact_id}/{name or 'model.bin'}"


def check_storage():
    """Raise ArtifactStorageError unless the storage answers (used by /readyz and before deletes)."""
    storage = current_storage()
    try:
        if is_s3(storage):
            storage.connection.meta.client.head_bucket(Bucket=storage.bucket_name)
        else:
            storage.listdir("")
    except FileNotFoundError:
        return  # an empty local store: the directory appears on the first upload
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"The artifact storage is unavailable: {exc}") from exc


def _save_file(key, fileobj):
    try:
        return artifact_storage.save(key, fileobj)
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not store the file: {exc}") from exc


def _delete_files(names):
    """Delete stored objects; failures are logged and left for ``prune_artifacts``."""
    for name in names:
        if not name:
            continue
        try:
            artifact_storage.delete(name)
        except STORAGE_ERRORS:
            logger.exception("Could not delete %s; `manage.py prune_artifacts` will remove it", name)


def _hash_file(fileobj, chunk_size=1024 * 1024):
    """Size and sha256 of a file that did not pass the hashing upload handler (admin, imports)."""
    digest, size = hashlib.sha256(), 0
    fileobj.seek(0)
    for chunk in iter(lambda: fileobj.read(chunk_size), b""):
        digest.update(chunk)
        size += len(chunk)
    fileobj.seek(0)
    return size, digest.hexdigest()


def _get_or_create(model, defaults=None, **lookup):
    """get_or_create that survives a concurrent creator: the loser of the unique race re-reads."""
    try:
        with transaction.atomic():
            return model.objects.get_or_create(defaults=defaults or {}, **lookup)
    except IntegrityError:
        return model.objects.get(**lookup), False


def _validated(instance, exclude=()):
    """Run model validation; unique checks are left to the database (they race anyway)."""
    instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    return instance


def _variant_conflict(version, artifact):
    return Conflict(
        f"Version {version.version} of {version.registered_model.name} already has a "
        f"{artifact.precision}/{artifact.target_device}/{artifact.format} artifact."
    )


def register_artifact(*, model_name, version, fileobj, user=None, model_fields=None,
                      version_fields=None, artifact_fields=None, size=None, sha256=None,
                      filename=None, content_type=""):
    """Register one model file, creating the registered model and version when they are new.

    ``size``/``sha256`` come from the hashing upload handler; when absent they are computed here
    by reading the file once. Returns the new Artifact. Raises ValidationError (400), Conflict
    (409) or ArtifactStorageError (503); on any failure no row and no object remain.
    """
    model_fields, version_fields, artifact_fields = model_fields or {}, version_fields or {}, artifact_fields or {}
    artifact = Artifact(id=uuid.uuid4(), created_by=user if user and user.is_authenticated else None,
                        original_filename=(filename or getattr(fileobj, "name", "") or "")[:255],
                        content_type=content_type[:100], **artifact_fields)
    # Validate everything before a byte goes to storage.
    registered = RegisteredModel.objects.filter(name=model_name).first()
    if registered is None:
        registered = _validated(RegisteredModel(name=model_name, **model_fields))
        existing_version = None
    else:
        existing_version = registered.versions.filter(version=version).first()
    # Metadata of an existing version is kept as it is (PATCH the version to change it), but what
    # the client sent must still be valid.
    _validated(ModelVersion(registered_model=registered, version=version, **version_fields),
               exclude=["registered_model"])
    _validated(artifact, exclude=["version", "file", "size", "sha256"])
    if existing_version and existing_version.status == ModelVersion.Status.ARCHIVED:
        raise Conflict(f"Version {version} of {model_name} is archived; it takes no new artifacts.")
    if existing_version and existing_version.artifacts.filter(
            precision=artifact.precision, target_device=artifact.target_device, format=artifact.format).exists():
        raise _variant_conflict(existing_version, artifact)
    if artifact.external_id and Artifact.objects.filter(external_id=artifact.external_id).exists():
        raise Conflict(f"An artifact with id {artifact.external_id} already exists.")

    if size is None or sha256 is None:
        size, sha256 = _hash_file(fileobj)
    artifact.size, artifact.sha256 = size, sha256
    fileobj.seek(0)
    stored_name = _save_file(artifact_key(artifact.id, artifact.original_filename), fileobj)
    try:
        with transaction.atomic():
            registered, _ = _get_or_create(RegisteredModel, name=model_name, defaults=model_fields)
            model_version, _ = _get_or_create(
                ModelVersion, registered_model=registered, version=version,
                defaults={**version_fields, "created_by": artifact.created_by},
            )
            artifact.version = model_version
            artifact.file.name = stored_name
            try:
                with transaction.atomic():
                    artifact.save(force_insert=True)
            except IntegrityError as exc:
                if artifact.external_id and Artifact.objects.filter(external_id=artifact.external_id).exists():
                    raise Conflict(f"An artifact with id {artifact.external_id} already exists.") from exc
                raise _variant_conflict(model_version, artifact) from exc
    except BaseException:
        _delete_files([stored_name])
        raise
    return artifact


def update_artifact(artifact, *, version_fields=None, artifact_fields=None):
    """Change an artifact's metadata (and its version's shared metadata) without touching the file."""
    with transaction.atomic():
        if version_fields:
            version = artifact.version
            for key, value in version_fields.items():
                setattr(version, key, value)
            _validated(version, exclude=["registered_model"])
            version.save(update_fields=[*version_fields, "updated_at"])
        if artifact_fields:
            for key, value in artifact_fields.items():
                setattr(artifact, key, value)
            _validated(artifact, exclude=["version", "file"])
            try:
                with transaction.atomic():
                    artifact.save(update_fields=[*artifact_fields, "updated_at"])
            except IntegrityError as exc:
                raise _variant_conflict(artifact.version, artifact) from exc
    return artifact


def _delete_with_files(instance, names):
    """Delete a row (and what cascades from it); its files go once the delete has committed.

    Storage is checked first, so when it is down the caller gets a 503 and nothing changes,
    rather than rows gone and objects stranded.
    """
    names = [n for n in names if n]
    if names:
        check_storage()
    with transaction.atomic():
        instance.delete()
        transaction.on_commit(lambda: _delete_files(names))


def delete_artifact(artifact):
    """Delete an artifact and its file."""
    _delete_with_files(artifact, [artifact.file.name])


def delete_version(version):
    """Delete a version, all of its artifacts and their files."""
    _delete_with_files(version, list(version.artifacts.values_list("file", flat=True)))


def delete_registered_model(registered_model, *, force=False):
    """Delete a registered model with all versions and files; refuse (409) without ``force`` when
    it still has versions, so one mistyped call cannot wipe a model's history."""
    if not force and registered_model.versions.exists():
        raise Conflict(
            f"{registered_model.name} has {registered_model.versions.count()} version(s); "
            "repeat the request with ?force=true to delete them and their files."
        )
    _delete_with_files(registered_model, list(registered_model.artifact_files()))


def parse_range(header, size):
    """Parse a single ``bytes=`` range into (start, end) inclusive, or None to send everything.

    Multiple ranges are answered with the whole file, which RFC 9110 allows.
    """
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                raise RangeNotSatisfiable()
            start, end = max(size - length, 0), size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    if start >= size or start > end or start < 0:
        raise RangeNotSatisfiable(f"The range {header} is outside the file of {size} bytes.")
    return start, end


def iter_artifact(artifact, start=0, end=None, chunk_size=1024 * 1024):
    """Yield the artifact's bytes [start, end] in chunks, never holding the file in memory.

    On S3 this asks for exactly the range needed (a ranged GET), so a resumed download of a big
    model does not make the server read what the client already has.
    """
    end = artifact.size - 1 if end is None else end
    if artifact.size == 0:
        return iter(())
    storage = current_storage()
    try:
        if is_s3(storage):
            body = storage.bucket.Object(storage._normalize_name(artifact.file.name)).get(
                Range=f"bytes={start}-{end}")["Body"]
            return _guarded(body.iter_chunks(chunk_size), body.close)
        handle = storage.open(artifact.file.name, "rb")
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not read the file: {exc}") from exc
    handle.seek(start)
    return _guarded(_read_range(handle, end - start + 1, chunk_size), handle.close)


def _read_range(handle, remaining, chunk_size):
    while remaining > 0:
        chunk = handle.read(min(chunk_size, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        yield chunk


def _guarded(chunks, close):
    try:
        yield from chunks
    finally:
        close()


# Writes for clients that see one variant together with its version's shared fields as a single
# "entry" (the Intel-compatible API in ``models_app.intel``).


def artifact_uri(artifact):
    """Where the artifact's object lives, as ``s3://<bucket>/<key>``; None for local files."""
    storage = current_storage()
    if not is_s3(storage):
        return None
    return f"s3://{storage.bucket_name}/{storage._normalize_name(artifact.file.name)}"


def update_version(version, *, fields):
    """Change a version's shared metadata; every variant of the version shows the change."""
    with transaction.atomic():
        for key, value in fields.items():
            setattr(version, key, value)
        _validated(version, exclude=["registered_model"])
        version.save(update_fields=[*fields, "updated_at"])
    return version


def change_artifact(artifact, *, model_name=None, version=None, version_fields=None, artifact_fields=None,
                    user=None):
    """Update an artifact and, when ``model_name``/``version`` name another version, move it there first.

    All in one transaction: a move that conflicts leaves nothing changed. A version created by the
    move starts with a copy of the old version's shared metadata, so the variant keeps showing the
    same fields. The file stays where it is (storage keys do not depend on the model or version).
    ``version_fields`` then apply to the version the artifact ends up in, shared by its variants.
    Raises ValidationError (400) or Conflict (409).
    """
    current = artifact.version
    model_name = model_name or current.registered_model.name
    version = version or current.version
    with transaction.atomic():
        if (model_name, version) != (current.registered_model.name, current.version):
            _validated(RegisteredModel(name=model_name))
            shared = {key: getattr(current, key) for key in VERSION_FIELDS}
            registered, _ = _get_or_create(RegisteredModel, name=model_name)
            _validated(ModelVersion(registered_model=registered, version=version, **shared),
                       exclude=["registered_model"])
            target, _ = _get_or_create(
                ModelVersion, registered_model=registered, version=version,
                defaults={**shared, "created_by": user if user and user.is_authenticated else None},
            )
            if target.status == ModelVersion.Status.ARCHIVED:
                raise Conflict(f"Version {version} of {model_name} is archived; it takes no new artifacts.")
            artifact.version = target
            try:
                with transaction.atomic():
                    artifact.save(update_fields=["version", "updated_at"])
            except IntegrityError as exc:
                raise _variant_conflict(target, artifact) from exc
        update_artifact(artifact, version_fields=version_fields, artifact_fields=artifact_fields)
    return artifact
