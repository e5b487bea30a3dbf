"""Writes that touch several rows or the object storage.

The rules that keep the registry consistent live here:
- a file is streamed to storage *before* its row is written, outside any transaction, and is
  removed again if the row cannot be written; a storage failure leaves no row;
- files are deleted only after the rows that point at them are gone (``on_commit``);
- uniqueness is enforced by database constraints, so concurrent writers get a clean 409.
"""

import hashlib
import json
import logging
import uuid
from datetime import timedelta

from botocore.exceptions import BotoCoreError, ClientError
from django.core.exceptions import SuspiciousFileOperation, ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.http import Http404
from django.utils.text import get_valid_filename

from .errors import (
    ArtifactStorageError,
    Conflict,
    DirectUploadUnavailable,
    FileTooLarge,
    NoMatchingVariant,
    RangeNotSatisfiable,
)
from .models import (
    ALIAS_NAME_VALIDATOR,
    Alias,
    AliasEvent,
    Artifact,
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    UploadSession,
)
from .storage import artifact_storage, current_storage, is_s3

logger = logging.getLogger(__name__)

STORAGE_ERRORS = (BotoCoreError, ClientError, OSError)

VERSION_FIELDS = (
    "description",
    "architecture",
    "category",
    "labels",
    "score_metric",
    "overview",
    "project_id",
    "project_name",
    "origin",
    "tags",
    "provenance",
)
ARTIFACT_FIELDS = (
    "precision",
    "target_device",
    "target_device_type",
    "format",
    "score",
    "optimization_capabilities",
    "external_id",
    "derived_from",
)


# --- Audit -------------------------------------------------------------------------------------

# The fields an audit entry records before and after, per kind of object.
AUDITED_FIELDS = {
    RegisteredModel: ("name", "description", "tags"),
    ModelVersion: ("registered_model", "version", "status", *VERSION_FIELDS, "derived_from"),
    Artifact: ("version", "file", "size", "sha256", "original_filename", "content_type", *ARTIFACT_FIELDS),
    Alias: ("name", "version"),
}


def snapshot(instance):
    """The audited fields of ``instance`` as JSON values (foreign keys as ids, files as keys)."""
    values = {}
    for name in AUDITED_FIELDS[type(instance)]:
        field = instance._meta.get_field(name)
        value = getattr(instance, field.attname)
        if isinstance(field, models.FileField):
            value = value.name or ""
        values[name] = value
    return json.loads(json.dumps(values, cls=DjangoJSONEncoder))


def diff(before, after):
    """``{field: [before, after]}`` for the fields that differ; a missing side is None.

    On a create or delete, fields that are empty on the present side are left out, so an entry
    lists what was set rather than every blank column.
    """
    changes = {}
    for key in {**before, **after}:
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if (not before or not after) and old in (None, "", [], {}) and new in (None, "", [], {}):
            continue
        changes[key] = [old, new]
    return changes


def _model_name_of(instance):
    if isinstance(instance, RegisteredModel):
        return instance.name
    if isinstance(instance, (ModelVersion, Alias)):
        return instance.registered_model.name
    if isinstance(instance, Artifact):
        return instance.version.registered_model.name
    return ""


def record_audit(
    *,
    action,
    instance=None,
    changes=None,
    user=None,
    object_type=None,
    object_id=None,
    object_repr=None,
    registered_model=None,
):
    """Append one entry to the audit log, in the caller's transaction.

    Give ``instance`` for a registry object (type, id, text and model name are taken from it), or
    ``object_type``/``object_id``/``object_repr`` for anything else. Importers call this with
    ``action="import"`` for what they bring in beyond ``register_artifact``.
    """
    if instance is not None:
        object_type = object_type or instance._meta.model_name
        object_id = object_id or str(instance.pk)
        object_repr = object_repr or str(instance)
        registered_model = registered_model if registered_model is not None else _model_name_of(instance)
    actor = user if user is not None and user.is_authenticated else None
    return AuditEntry.objects.create(
        action=action,
        actor=actor,
        actor_name=actor.get_username() if actor else "",
        object_type=object_type,
        object_id=str(object_id),
        object_repr=(object_repr or "")[:300],
        registered_model=registered_model or "",
        changes=changes or {},
    )


def artifact_key(artifact_id, filename):
    """Storage key built from the artifact's id: a client's file name can never pick the path.

    The cleaned file name is kept at the end only so the bucket stays readable for humans.
    """
    try:
        name = get_valid_filename(str(filename or "").replace("\\", "/").rsplit("/", 1)[-1])[:100].lstrip(".")
    except SuspiciousFileOperation:  # nothing usable is left of the name (empty, ".", "..")
        name = ""
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


def _audit_created(instance, user):
    """Audit a new row with every field as a change from nothing."""
    record_audit(action=AuditEntry.Action.CREATE, instance=instance, user=user, changes=diff({}, snapshot(instance)))


def _get_or_create_audited(model, *, user, defaults=None, **lookup):
    """``_get_or_create`` that audits the row when this call created it."""
    instance, created = _get_or_create(model, defaults=defaults, **lookup)
    if created:
        _audit_created(instance, user)
    return instance


def _validated(instance, exclude=()):
    """Run model validation; unique checks are left to the database (they race anyway)."""
    instance.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    return instance


def _variant_conflict(version, artifact):
    return Conflict(
        f"Version {version.version} of {version.registered_model.name} already has a "
        f"{artifact.precision}/{artifact.target_device}/{artifact.format} artifact."
    )


def _checked_artifact(
    *,
    model_name,
    version,
    user=None,
    model_fields=None,
    version_fields=None,
    artifact_fields=None,
    filename="",
    content_type="",
    artifact_id=None,
):
    """An unsaved Artifact for the given metadata, after every check that can be made before a
    byte is stored: field validation, an archived version, a taken variant or external id."""
    model_fields, version_fields, artifact_fields = model_fields or {}, version_fields or {}, artifact_fields or {}
    artifact = Artifact(
        id=artifact_id or uuid.uuid4(),
        created_by=user if user and user.is_authenticated else None,
        original_filename=(filename or "")[:255],
        content_type=(content_type or "")[:100],
        **artifact_fields,
    )
    registered = RegisteredModel.objects.filter(name=model_name).first()
    if registered is None:
        registered = _validated(RegisteredModel(name=model_name, **model_fields))
        existing_version = None
    else:
        existing_version = registered.versions.filter(version=version).first()
    # Metadata of an existing version is kept as it is (PATCH the version to change it), but what
    # the client sent must still be valid.
    _validated(
        ModelVersion(registered_model=registered, version=version, **version_fields), exclude=["registered_model"]
    )
    _validated(artifact, exclude=["version", "file", "size", "sha256"])
    if existing_version and existing_version.status == ModelVersion.Status.ARCHIVED:
        raise Conflict(f"Version {version} of {model_name} is archived; it takes no new artifacts.")
    if (
        existing_version
        and existing_version.artifacts.filter(
            precision=artifact.precision, target_device=artifact.target_device, format=artifact.format
        ).exists()
    ):
        raise _variant_conflict(existing_version, artifact)
    if artifact.external_id and Artifact.objects.filter(external_id=artifact.external_id).exists():
        raise Conflict(f"An artifact with id {artifact.external_id} already exists.")
    return artifact


def check_artifact_registration(**kwargs):
    """Raise what ``register_artifact`` would raise for this metadata, without storing anything
    (direct uploads check before the client sends its file)."""
    _checked_artifact(**kwargs)


def check_upload_precheck(fields):
    """Refuse (409) a multipart upload whose variant is already taken, from the form fields that
    arrived before its file, so a duplicate gigabyte file is never streamed. Fields that are
    missing or invalid here are left to the full validation after the upload."""
    model_name, version = fields.get("registered_model"), fields.get("version")
    if not model_name or not version:
        return
    variant = (
        Artifact.objects.filter(
            version__registered_model__name=model_name,
            version__version=version,
            precision=(fields.get("precision") or "FP32").strip().upper(),
            target_device=(fields.get("target_device") or "CPU").strip().upper(),
            format=(fields.get("format") or "openvino").strip().lower(),
        )
        .select_related("version", "version__registered_model")
        .first()
    )
    if variant is not None:
        raise _variant_conflict(variant.version, variant)


def _store_file(artifact, fileobj):
    """Put the file in storage and return its name. A file the upload handler (or a direct
    upload) already stored is taken over as it is: from here on, the row-or-delete rule of
    ``register_artifact`` owns it."""
    stored_name = getattr(fileobj, "stored_name", None)
    if stored_name:
        fileobj.claimed = True
        return stored_name
    fileobj.seek(0)
    return _save_file(artifact_key(artifact.id, artifact.original_filename), fileobj)


def register_artifact(
    *,
    model_name,
    version,
    fileobj,
    user=None,
    model_fields=None,
    version_fields=None,
    artifact_fields=None,
    size=None,
    sha256=None,
    filename=None,
    content_type="",
    audit_action=AuditEntry.Action.UPLOAD,
):
    """Register one model file, creating the registered model and version when they are new.

    ``size``/``sha256`` come from the hashing upload handler; when absent they are computed here
    by reading the file once. A file already in storage (``fileobj.stored_name``, from the
    streaming upload handler or a direct upload) is registered in place. Returns the new
    Artifact. Raises ValidationError (400), Conflict (409) or ArtifactStorageError (503); on any
    failure no row and no object remain.
    The audit log gets an ``audit_action`` entry ("upload"; importers pass "import") for the
    artifact and a "create" entry for a registered model or version made on the way.
    """
    model_fields, version_fields = model_fields or {}, version_fields or {}
    # Validate everything before a byte goes to storage.
    try:
        artifact = _checked_artifact(
            model_name=model_name,
            version=version,
            user=user,
            model_fields=model_fields,
            version_fields=version_fields,
            artifact_fields=artifact_fields,
            filename=filename or getattr(fileobj, "name", "") or "",
            content_type=content_type,
            artifact_id=getattr(fileobj, "artifact_id", None),
        )
    except BaseException:
        if getattr(fileobj, "stored_name", None):
            fileobj.close()  # an already stored file that will not be registered is deleted
        raise
    if size is None or sha256 is None:
        size, sha256 = _hash_file(fileobj)
    artifact.size, artifact.sha256 = size, sha256
    stored_name = _store_file(artifact, fileobj)
    try:
        with transaction.atomic():
            registered = _get_or_create_audited(RegisteredModel, user=user, name=model_name, defaults=model_fields)
            model_version = _get_or_create_audited(
                ModelVersion,
                user=user,
                registered_model=registered,
                version=version,
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
            record_audit(action=audit_action, instance=artifact, user=user, changes=diff({}, snapshot(artifact)))
    except BaseException:
        _delete_files([stored_name])
        raise
    return artifact


def update_artifact(artifact, *, version_fields=None, artifact_fields=None, user=None):
    """Change an artifact's metadata (and its version's shared metadata) without touching the file."""
    with transaction.atomic():
        if version_fields:
            update_version(artifact.version, fields=version_fields, user=user)
        if artifact_fields:
            before = snapshot(artifact)
            for key, value in artifact_fields.items():
                setattr(artifact, key, value)
            _validated(artifact, exclude=["version", "file"])
            try:
                with transaction.atomic():
                    artifact.save(update_fields=[*artifact_fields, "updated_at"])
            except IntegrityError as exc:
                raise _variant_conflict(artifact.version, artifact) from exc
            changes = diff(before, snapshot(artifact))
            if changes:
                record_audit(action=AuditEntry.Action.UPDATE, instance=artifact, user=user, changes=changes)
    return artifact


def create_registered_model(*, user=None, **fields):
    """Create a registered model (no versions yet) and audit it; a taken name is a 409."""
    registered = _validated(RegisteredModel(**fields), exclude=["id"])
    try:
        with transaction.atomic():
            registered.save(force_insert=True)
            _audit_created(registered, user)
    except IntegrityError as exc:
        raise Conflict(f"A registered model named {registered.name} already exists.") from exc
    return registered


def update_registered_model(registered_model, *, fields, user=None):
    """Change a registered model's name, description or tags, auditing what changed."""
    before = snapshot(registered_model)
    for key, value in fields.items():
        setattr(registered_model, key, value)
    _validated(registered_model)
    try:
        with transaction.atomic():
            registered_model.save(update_fields=[*fields, "updated_at"])
            changes = diff(before, snapshot(registered_model))
            if changes:
                record_audit(action=AuditEntry.Action.UPDATE, instance=registered_model, user=user, changes=changes)
    except IntegrityError as exc:
        raise Conflict(f"A registered model named {registered_model.name} already exists.") from exc
    return registered_model


def create_version(*, registered_model, user=None, **fields):
    """Create a version without files (artifacts are uploaded to it later) and audit it."""
    created_by = user if user is not None and user.is_authenticated else None
    version = _validated(
        ModelVersion(registered_model=registered_model, created_by=created_by, **fields), exclude=["id"]
    )
    try:
        with transaction.atomic():
            version.save(force_insert=True)
            _audit_created(version, user)
    except IntegrityError as exc:
        raise Conflict(f"{registered_model.name} already has a version {version.version}.") from exc
    return version


def update_version(version, *, fields, user=None):
    """Change a version's metadata or status, auditing what changed.

    Archiving is refused while an alias points at the version: an alias must never lead to an
    archived version. The version row is locked so that check cannot race ``set_alias``, which
    takes the same lock before it points an alias here.
    """
    with transaction.atomic():
        if fields.get("status") == ModelVersion.Status.ARCHIVED:
            # order_by(): the default ordering joins the registered model, whose row would be locked too.
            ModelVersion.objects.select_for_update().filter(pk=version.pk).order_by().first()
            aliases = sorted(version.aliases.values_list("name", flat=True))
            if aliases:
                raise Conflict(
                    f"Version {version.version} of {version.registered_model.name} is the target of "
                    f"alias(es) {', '.join(aliases)}; move them before archiving it."
                )
        before = snapshot(version)
        for key, value in fields.items():
            setattr(version, key, value)
        _validated(version, exclude=["registered_model"])
        try:
            with transaction.atomic():
                version.save(update_fields=[*fields, "updated_at"])
        except IntegrityError as exc:
            raise Conflict(f"{version.registered_model.name} already has a version {version.version}.") from exc
        changes = diff(before, snapshot(version))
        if changes:
            record_audit(action=AuditEntry.Action.UPDATE, instance=version, user=user, changes=changes)
    return version


def _delete_with_files(instance, names, *, user=None, cascade=None):
    """Delete a row (and what cascades from it); its files go once the delete has committed.

    Storage is checked first, so when it is down the caller gets a 503 and nothing changes,
    rather than rows gone and objects stranded. The audit entry lists the row's fields and
    ``cascade`` (how many versions, artifacts, ... went with it).
    """
    names = [n for n in names if n]
    if names:
        check_storage()
    with transaction.atomic():
        changes = diff(snapshot(instance), {})
        changes.update({key: [count, None] for key, count in (cascade or {}).items() if count})
        record_audit(action=AuditEntry.Action.DELETE, instance=instance, user=user, changes=changes)
        instance.delete()
        transaction.on_commit(lambda: _delete_files(names))


def delete_artifact(artifact, *, user=None):
    """Delete an artifact and its file."""
    _delete_with_files(artifact, [artifact.file.name], user=user)


def delete_version(version, *, user=None):
    """Delete a version, all of its artifacts and their files; refused (409) while an alias
    points at it, so "production" never dangles."""
    aliases = sorted(version.aliases.values_list("name", flat=True))
    if aliases:
        raise Conflict(
            f"Version {version.version} of {version.registered_model.name} is the target of "
            f"alias(es) {', '.join(aliases)}; move or delete them first."
        )
    names = list(version.artifacts.values_list("file", flat=True))
    _delete_with_files(version, names, user=user, cascade={"artifacts": len(names)})


def delete_registered_model(registered_model, *, force=False, user=None):
    """Delete a registered model with all versions and files; refuse (409) without ``force`` when
    it still has versions, so one mistyped call cannot wipe a model's history."""
    version_count = registered_model.versions.count()
    if not force and version_count:
        raise Conflict(
            f"{registered_model.name} has {version_count} version(s); "
            "repeat the request with ?force=true to delete them and their files."
        )
    names = list(registered_model.artifact_files())
    _delete_with_files(
        registered_model,
        names,
        user=user,
        cascade={"versions": version_count, "artifacts": len(names), "aliases": registered_model.aliases.count()},
    )


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
            body = storage.bucket.Object(storage._normalize_name(artifact.file.name)).get(Range=f"bytes={start}-{end}")[
                "Body"
            ]
            return _guarded(_read_ahead(body.iter_chunks(chunk_size)), body.close)
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


def _read_ahead(chunks, depth=4):
    """Iterate ``chunks`` in a background thread, up to ``depth`` chunks ahead of the consumer.

    Proxied downloads read from S3 and write to the client: done one after the other, each waits
    for the other's round trips. Reading ahead overlaps them, with memory bounded by ``depth``
    chunks. Closing the generator (a finished or dropped client) stops the reader.
    """
    import queue
    import threading

    ahead, stop, done = queue.Queue(maxsize=depth), threading.Event(), object()

    def produce():
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ahead.put(chunk, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item = done
        except BaseException as exc:  # handed to the consumer, which raises it in the request
            item = exc
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    reader = threading.Thread(target=produce, name="artifact-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = ahead.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


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


def change_artifact(artifact, *, model_name=None, version=None, version_fields=None, artifact_fields=None, user=None):
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
            registered = _get_or_create_audited(RegisteredModel, user=user, name=model_name)
            _validated(
                ModelVersion(registered_model=registered, version=version, **shared), exclude=["registered_model"]
            )
            target = _get_or_create_audited(
                ModelVersion,
                user=user,
                registered_model=registered,
                version=version,
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
            record_audit(
                action=AuditEntry.Action.UPDATE,
                instance=artifact,
                user=user,
                changes={"version": [str(current.pk), str(target.pk)]},
            )
        update_artifact(artifact, version_fields=version_fields, artifact_fields=artifact_fields, user=user)
    return artifact


# --- Aliases ----------------------------------------------------------------------------------


def normalize_alias_name(name):
    """Alias names are lower-case slugs, so "Production" cannot dodge the protected "production"."""
    name = (name or "").strip().lower()
    try:
        ALIAS_NAME_VALIDATOR(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from exc
    return name


def _locked_alias(registered_model, name):
    """The alias row, locked until the transaction ends, or None.

    No joins in the locking query: on PostgreSQL a row updated by the transaction we waited for
    is re-checked against the *old* joined rows, and a changed version_id would make the alias
    vanish from the result. Its version is read after the lock, so it is current.
    """
    return Alias.objects.select_for_update().filter(registered_model=registered_model, name=name).order_by().first()


def _alias_event(alias_name, registered_model, action, from_version, to_version, user, reason):
    return AliasEvent.objects.create(
        registered_model=registered_model,
        alias=alias_name,
        action=action,
        from_version=from_version,
        to_version=to_version,
        from_version_label=from_version.version if from_version else "",
        to_version_label=to_version.version if to_version else "",
        user=user if user is not None and user.is_authenticated else None,
        reason=reason or "",
    )


def _audit_alias(action, registered_model, name, from_version, to_version, user, reason):
    changes = {"version": [from_version.version if from_version else None, to_version.version if to_version else None]}
    if reason:
        changes["reason"] = [None, reason]
    record_audit(
        action=action,
        user=user,
        object_type="alias",
        object_id=name,
        object_repr=f"{registered_model.name}@{name}",
        registered_model=registered_model.name,
        changes=changes,
    )


def _move_alias(alias, version, *, user, reason, action):
    from_version = alias.version
    alias.version, alias.updated_by = version, user if user is not None and user.is_authenticated else None
    alias.save(update_fields=["version", "updated_by", "updated_at"])
    event = _alias_event(alias.name, alias.registered_model, action, from_version, version, user, reason)
    _audit_alias(
        {
            AliasEvent.Action.MOVE: AuditEntry.Action.ALIAS_MOVE,
            AliasEvent.Action.ROLLBACK: AuditEntry.Action.ALIAS_ROLLBACK,
        }[action],
        alias.registered_model,
        alias.name,
        from_version,
        version,
        user,
        reason,
    )
    return event


def _lock_target(registered_model, version):
    """Re-read the target version under a row lock, so it cannot be archived while we point at it."""
    # order_by(): the default ordering joins the registered model, whose row would be locked too
    # and so serialise every alias write of the model, not just those of one alias.
    target = ModelVersion.objects.select_for_update().filter(pk=version.pk).order_by().first()
    if target is None or target.registered_model_id != registered_model.pk:
        raise ValidationError({"version": f"{registered_model.name} has no such version."})
    if target.status == ModelVersion.Status.ARCHIVED:
        raise Conflict(f"Version {target.version} of {registered_model.name} is archived; an alias cannot point to it.")
    return target


def set_alias(*, registered_model, name, version, user=None, reason=""):
    """Point alias ``name`` of ``registered_model`` at ``version``, creating the alias if needed.

    Returns ``(alias, event)``; ``event`` is None when the alias already pointed there (nothing is
    written). Concurrent callers serialise on the alias row (``SELECT ... FOR UPDATE``); when two
    create the same new alias at once the database's unique constraint lets one insert and the
    other then moves the row the first one made, so both moves are in the history.
    """
    name = normalize_alias_name(name)
    with transaction.atomic():
        version = _lock_target(registered_model, version)
        alias = _locked_alias(registered_model, name)
        if alias is None:
            try:
                with transaction.atomic():
                    alias = Alias.objects.create(
                        registered_model=registered_model,
                        name=name,
                        version=version,
                        updated_by=user if user is not None and user.is_authenticated else None,
                    )
            except IntegrityError:
                # A concurrent caller created it first: wait for its row and move it from there.
                logger.info("Alias %s of %s was created concurrently; moving it", name, registered_model.name)
                alias = _locked_alias(registered_model, name)
            else:
                event = _alias_event(name, registered_model, AliasEvent.Action.SET, None, version, user, reason)
                _audit_alias(AuditEntry.Action.ALIAS_SET, registered_model, name, None, version, user, reason)
                return alias, event
        if alias.version_id == version.pk:
            return alias, None
        return alias, _move_alias(alias, version, user=user, reason=reason, action=AliasEvent.Action.MOVE)


def rollback_alias(*, registered_model, name, user=None, reason=""):
    """Move an alias back to the version it pointed at before its latest move.

    "Previous" is the ``from`` side of the latest history event, so rolling back twice returns to
    where the first rollback started. Raises 404 for an unknown alias and 409 when there is no
    previous target, or it has been deleted or archived since.
    """
    name = normalize_alias_name(name)
    with transaction.atomic():
        alias = _locked_alias(registered_model, name)
        if alias is None:
            raise Http404(f"{registered_model.name} has no alias {name}.")
        last = (
            AliasEvent.objects.select_related("from_version")
            .filter(registered_model=registered_model, alias=name)
            .order_by("-at", "-id")
            .first()
        )
        if last is None or not last.from_version_label:
            raise Conflict(f"Alias {name} of {registered_model.name} has no previous version to roll back to.")
        if last.from_version is None:
            raise Conflict(
                f"Alias {name} previously pointed to version {last.from_version_label}, which has been deleted."
            )
        target = _lock_target(registered_model, last.from_version)
        return alias, _move_alias(alias, target, user=user, reason=reason, action=AliasEvent.Action.ROLLBACK)


def delete_alias(*, registered_model, name, user=None, reason=""):
    """Delete an alias; its history stays (with a final "delete" event)."""
    name = normalize_alias_name(name)
    with transaction.atomic():
        alias = _locked_alias(registered_model, name)
        if alias is None:
            raise Http404(f"{registered_model.name} has no alias {name}.")
        event = _alias_event(name, registered_model, AliasEvent.Action.DELETE, alias.version, None, user, reason)
        _audit_alias(AuditEntry.Action.ALIAS_DELETE, registered_model, name, alias.version, None, user, reason)
        alias.delete()
    return event


# --- Resolving the right variant for a device ------------------------------------------------

# Variants built for "any device": OpenVINO's AUTO plugin picks the device at load time.
GENERIC_DEVICES = ("AUTO", "ANY")


def _no_match(constraint, value, available):
    shown = ", ".join(str(a) for a in available) or "none"
    return NoMatchingVariant(
        f"No variant matches: the remaining ones were ruled out by {constraint}={value} (available: {shown}).",
        constraint=constraint,
        available=available,
    )


def resolve_artifact(
    *, registered_model, alias=None, version=None, target_device=None, precisions=None, format=None, max_size=None
):
    """Pick the best artifact of a version (named directly or through an alias) for a device.

    Constraints are applied in this order, and the first one that leaves nothing raises
    NoMatchingVariant naming it and the values that were still available: format,
    target_device (the exact device, or a generic AUTO/ANY build), precision (any of
    ``precisions``), max_size (bytes). Among what is left the ranking is, in order: the
    caller's precision preference (earlier in ``precisions`` wins), an exact device match over a
    generic build, higher score (unscored last), smaller size, newer, and the id as a final tie
    break, so the answer is stable. Returns ``(artifact, version, alias_or_None)``.
    """
    if (alias is None) == (version is None):
        raise ValidationError({"non_field_errors": ["Give exactly one of alias or version."]})
    alias_obj = None
    if alias is not None:
        alias_obj = (
            Alias.objects.select_related("version")
            .filter(registered_model=registered_model, name=alias.strip().lower())
            .first()
        )
        if alias_obj is None:
            raise Http404(f"{registered_model.name} has no alias {alias}.")
        model_version = alias_obj.version
    else:
        model_version = registered_model.versions.filter(version=version).first()
        if model_version is None:
            raise Http404(f"{registered_model.name} has no version {version}.")

    model_version.registered_model = registered_model
    candidates = list(model_version.artifacts.select_related("created_by"))
    if not candidates:
        raise NoMatchingVariant(
            f"Version {model_version.version} of {registered_model.name} has no artifacts.",
            constraint="version",
            available=[],
        )
    precisions = [p.strip().upper() for p in precisions or [] if p.strip()]
    device = (target_device or "").strip().upper()
    fmt = (format or "").strip().lower()
    steps = [
        ("format", fmt, lambda a: a.format == fmt, lambda a: a.format),
        ("target_device", device, lambda a: a.target_device in (device, *GENERIC_DEVICES), lambda a: a.target_device),
        ("precision", ",".join(precisions), lambda a: a.precision in precisions, lambda a: a.precision),
        ("max_size", max_size, lambda a: a.size <= max_size, lambda a: a.size),
    ]
    for constraint, value, keep, describe in steps:
        if value in (None, ""):
            continue
        remaining = [a for a in candidates if keep(a)]
        if not remaining:
            available = sorted({describe(a) for a in candidates})
            if constraint == "max_size":
                available = [min(available)]  # the smallest size that would have fitted
            raise _no_match(constraint, value, available)
        candidates = remaining

    def rank(a):
        return (
            precisions.index(a.precision) if precisions else 0,
            0 if not device or a.target_device == device else 1,
            a.score is None,
            -(a.score or 0.0),
            a.size,
            -a.created_at.timestamp(),
            str(a.id),
        )

    best = min(candidates, key=rank)
    best.version = model_version
    return best, model_version, alias_obj


# --- Comparison ------------------------------------------------------------------------------

COMPARE_MAX_ITEMS = 20
VERSION_COMPARE_FIELDS = (
    "registered_model",
    "version",
    "status",
    "description",
    "architecture",
    "category",
    "labels",
    "project_id",
    "project_name",
    "origin",
    "tags",
    "provenance",
    "derived_from",
    "overview",
    "created_by",
    "created_at",
    "artifact_count",
    "total_size",
)
ARTIFACT_COMPARE_FIELDS = (
    "registered_model",
    "version",
    "precision",
    "target_device",
    "target_device_type",
    "format",
    "score",
    "size",
    "sha256",
    "external_id",
    "derived_from",
    "optimization_capabilities",
    "architecture",
    "category",
    "labels",
    "tags",
    "provenance",
    "created_at",
)
NUMERIC_FIELDS = {"score", "size", "total_size", "artifact_count"}


def _label_names(labels):
    return sorted(str(x.get("name", x)) if isinstance(x, dict) else str(x) for x in labels or [])


def _delta(base, value):
    if base is None or value is None:
        return None
    return round(value - base, 10) if isinstance(value, float) or isinstance(base, float) else value - base


def _row(field, values):
    row = {"field": field, "values": values, "differs": any(v != values[0] for v in values[1:])}
    if field in NUMERIC_FIELDS:
        row["deltas"] = [_delta(values[0], v) for v in values]
    if field == "labels":
        base = set(values[0])
        row["added"] = [sorted(set(v) - base) for v in values]
        row["removed"] = [sorted(base - set(v)) for v in values]
    return row


def _version_values(v):
    artifacts = list(v.artifacts.all())
    return {
        "registered_model": v.registered_model.name,
        "version": v.version,
        "status": v.status,
        "description": v.description,
        "architecture": v.architecture,
        "category": v.category,
        "labels": _label_names(v.labels),
        "project_id": v.project_id,
        "project_name": v.project_name,
        "origin": v.origin,
        "tags": v.tags,
        "provenance": v.provenance,
        "derived_from": str(v.derived_from_id) if v.derived_from_id else None,
        "overview": v.overview,
        "created_by": v.created_by.get_username() if v.created_by else None,
        "created_at": v.created_at.isoformat(),
        "artifact_count": len(artifacts),
        "total_size": sum(a.size for a in artifacts),
    }


def _artifact_values(a):
    v = a.version
    return {
        "registered_model": v.registered_model.name,
        "version": v.version,
        "precision": a.precision,
        "target_device": a.target_device,
        "target_device_type": a.target_device_type,
        "format": a.format,
        "score": a.score,
        "size": a.size,
        "sha256": a.sha256,
        "external_id": a.external_id,
        "derived_from": str(a.derived_from_id) if a.derived_from_id else None,
        "optimization_capabilities": a.optimization_capabilities,
        "architecture": v.architecture,
        "category": v.category,
        "labels": _label_names(v.labels),
        "tags": v.tags,
        "provenance": v.provenance,
        "created_at": a.created_at.isoformat(),
    }


def _fetch_in_order(queryset, ids, kind):
    if not 2 <= len(ids) <= COMPARE_MAX_ITEMS:
        raise ValidationError({kind: [f"Compare between 2 and {COMPARE_MAX_ITEMS} {kind}, not {len(ids)}."]})
    if len(set(ids)) != len(ids):
        raise ValidationError({kind: ["Each id may appear only once."]})
    try:
        ids = [uuid.UUID(str(i)) for i in ids]
    except ValueError as exc:
        raise ValidationError({kind: ["Ids must be UUIDs."]}) from exc
    found = {obj.pk: obj for obj in queryset.filter(pk__in=ids)}
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise Http404(f"No {kind[:-1]} with id {', '.join(missing)}.")
    return [found[i] for i in ids]


def compare(*, versions=None, artifacts=None):
    """Compare 2..COMPARE_MAX_ITEMS versions or artifacts field by field, the first as baseline.

    Returns ``{"kind", "items", "fields", "variants"?}``: each field row has the values in the
    order asked, ``differs``, and for numbers ``deltas`` against the first item (labels get
    ``added``/``removed``). Comparing versions also lines their variants up by
    precision/device/format with score and size deltas and sha256. Two queries whatever N is.
    """
    if (versions is None) == (artifacts is None):
        raise ValidationError({"non_field_errors": ["Give either versions or artifacts to compare."]})
    if artifacts is not None:
        items = _fetch_in_order(Artifact.objects.with_version(), artifacts, "artifacts")
        values = [_artifact_values(a) for a in items]
        return {
            "kind": "artifacts",
            "items": [{"id": str(a.id), "label": str(a)} for a in items],
            "fields": [_row(f, [v[f] for v in values]) for f in ARTIFACT_COMPARE_FIELDS],
        }
    items = _fetch_in_order(
        ModelVersion.objects.select_related("registered_model", "created_by").prefetch_related("artifacts"),
        versions,
        "versions",
    )
    values = [_version_values(v) for v in items]
    variants = {}
    for index, v in enumerate(items):
        for a in v.artifacts.all():
            key = f"{a.precision}/{a.target_device}/{a.format}"
            variants.setdefault(key, [None] * len(items))[index] = {
                "id": str(a.id),
                "score": a.score,
                "size": a.size,
                "sha256": a.sha256,
            }
    variant_rows = []
    for key in sorted(variants):
        cells = variants[key]
        base = cells[0]
        variant_rows.append(
            {
                "variant": key,
                "values": cells,
                "differs": any((c or {}).get("sha256") != (base or {}).get("sha256") for c in cells[1:]),
                "score_deltas": [_delta(base and base["score"], c and c["score"]) for c in cells],
                "size_deltas": [_delta(base and base["size"], c and c["size"]) for c in cells],
            }
        )
    return {
        "kind": "versions",
        "items": [{"id": str(v.id), "label": str(v)} for v in items],
        "fields": [_row(f, [v[f] for v in values]) for f in VERSION_COMPARE_FIELDS],
        "variants": variant_rows,
    }


_presigning_clients = {}


def presigning_client(storage):
    """The S3 client that signs URLs handed to clients (downloads in redirect mode, direct-upload
    parts).

    A signature covers the host, so when the registry reaches S3 by an address its clients cannot
    (``http://minio:9000`` inside Docker Compose), ``S3_PUBLIC_ENDPOINT_URL`` names the address
    clients use and URLs are signed for it. Without it, the storage's own client signs.
    """
    from django.conf import settings

    public = settings.S3_PUBLIC_ENDPOINT_URL
    if not public:
        return storage.connection.meta.client
    key = (public, storage.access_key, storage.region_name)
    if key not in _presigning_clients:
        _presigning_clients[key] = storage._create_session().client(
            "s3",
            endpoint_url=public,
            region_name=storage.region_name,
            config=storage.client_config,
            verify=storage.verify,
        )
    return _presigning_clients[key]


def presigned_download_url(artifact, expires=None):
    """A short-lived presigned GET URL for the artifact's object, or None on local files.

    The URL makes S3 answer with the registry's file name (Content-Disposition) and a generic
    content type, so a browser following the redirect saves the same file a proxied download would.
    """
    storage = current_storage()
    if not is_s3(storage):
        return None
    from django.utils.http import content_disposition_header

    try:
        client = presigning_client(storage)
        return client.generate_presigned_url(
            "get_object",
            ExpiresIn=expires or storage.querystring_expire,
            Params={
                "Bucket": storage.bucket_name,
                "Key": storage._normalize_name(artifact.file.name),
                "ResponseContentDisposition": content_disposition_header(True, artifact.download_filename),
                "ResponseContentType": "application/octet-stream",
            },
        )
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not sign a download URL: {exc}") from exc


# Direct uploads: big files go from the client to S3 through presigned part URLs; the registry
# only hands out the URLs, then completes, verifies and registers what arrived.


def _s3_client():
    storage = current_storage()
    if not is_s3(storage):
        raise DirectUploadUnavailable()
    return storage, storage.connection.meta.client


def start_direct_upload(
    *, user, model_name, version, size, filename, content_type="", sha256="", version_fields=None, artifact_fields=None
):
    """Check the metadata as a registration would, then open an S3 multipart upload for the file.

    Returns the UploadSession; ``direct_upload_part_urls`` gives the URLs to PUT the parts to.
    Raises DirectUploadUnavailable (501) on local files, FileTooLarge (413), ValidationError
    (400), Conflict (409) or ArtifactStorageError (503).
    """
    from django.conf import settings
    from django.utils import timezone

    from .uploads import part_size_for

    storage, client = _s3_client()
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
        metadata={
            "registered_model": model_name,
            "version": version,
            "version_fields": version_fields,
            "artifact_fields": artifact_fields,
        },
        expires_at=timezone.now() + timedelta(hours=settings.REGISTRY_UPLOAD_SESSION_HOURS),
    )
    session.key = artifact_key(session.id, filename)
    try:
        session.upload_id = client.create_multipart_upload(
            Bucket=storage.bucket_name, Key=storage._normalize_name(session.key)
        )["UploadId"]
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not start the upload: {exc}") from exc
    try:
        session.save(force_insert=True)
    except BaseException:
        _abort_multipart(session)
        raise
    return session


def direct_upload_part_urls(session):
    """Presigned PUT URLs, one per part, valid until the session expires."""
    from django.utils import timezone

    storage, _ = _s3_client()
    client = presigning_client(storage)
    expires_in = max(60, int((session.expires_at - timezone.now()).total_seconds()))
    # SigV4 presigned URLs live at most 7 days.
    expires_in = min(expires_in, 7 * 24 * 3600)
    key = storage._normalize_name(session.key)
    return [
        {
            "part_number": number,
            "url": client.generate_presigned_url(
                "upload_part",
                ExpiresIn=expires_in,
                Params={"Bucket": storage.bucket_name, "Key": key, "UploadId": session.upload_id, "PartNumber": number},
            ),
        }
        for number in range(1, session.part_count + 1)
    ]


def _abort_multipart(session):
    storage, client = _s3_client()
    try:
        client.abort_multipart_upload(
            Bucket=storage.bucket_name, Key=storage._normalize_name(session.key), UploadId=session.upload_id
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
            raise


def _object_sha256(storage, client, key, chunk_size=8 * 1024 * 1024):
    """Read the stored object once and hash it: S3's own multipart checksums are checksums of
    part checksums, not the sha256 of the file a client knows."""
    digest = hashlib.sha256()
    body = client.get_object(Bucket=storage.bucket_name, Key=key)["Body"]
    try:
        for chunk in body.iter_chunks(chunk_size):
            digest.update(chunk)
    finally:
        body.close()
    return digest.hexdigest()


def _fail_session(session, message, *, state=UploadSession.State.FAILED):
    session.state, session.error = state, message[:2000]
    session.save(update_fields=["state", "error"])


def complete_direct_upload(session, *, parts, user=None):
    """Complete the multipart upload, verify size and sha256 of what arrived, and register it.

    ``parts`` is a list of {"part_number", "etag"} as S3 answered each PUT. On a size or sha256
    mismatch the object is deleted and a ValidationError (400) raised; a Conflict at registration
    (the variant was taken meanwhile) deletes it too. The session ends ``completed`` or ``failed``.
    """
    claimed = UploadSession.objects.filter(pk=session.pk, state=UploadSession.State.PENDING).update(
        state=UploadSession.State.COMPLETING
    )
    if not claimed:
        session.refresh_from_db()
        raise Conflict(f"This upload is {session.state}; only a pending upload can be completed.")
    storage, client = _s3_client()
    key = storage._normalize_name(session.key)
    try:
        client.complete_multipart_upload(
            Bucket=storage.bucket_name,
            Key=key,
            UploadId=session.upload_id,
            MultipartUpload={
                "Parts": [
                    {"PartNumber": p["part_number"], "ETag": p["etag"]}
                    for p in sorted(parts, key=lambda p: p["part_number"])
                ]
            },
        )
    except ClientError as exc:
        # Wrong or missing parts: the upload stays open so the client can fix its list.
        UploadSession.objects.filter(pk=session.pk).update(state=UploadSession.State.PENDING)
        message = exc.response.get("Error", {}).get("Message", exc)
        raise ValidationError({"parts": [f"S3 refused the parts: {message}"]}) from exc
    except STORAGE_ERRORS as exc:
        UploadSession.objects.filter(pk=session.pk).update(state=UploadSession.State.PENDING)
        raise ArtifactStorageError(f"Could not complete the upload: {exc}") from exc
    try:
        size = client.head_object(Bucket=storage.bucket_name, Key=key)["ContentLength"]
        if size != session.size:
            raise ValidationError({"size": [f"{size} bytes arrived; the upload announced {session.size}."]})
        sha256 = _object_sha256(storage, client, key)
        if session.sha256 and sha256 != session.sha256:
            raise ValidationError({"sha256": [f"The file that arrived has sha256 {sha256}, not {session.sha256}."]})
    except BaseException as exc:
        _delete_files([session.key])
        _fail_session(session, str(getattr(exc, "detail", exc)))
        if isinstance(exc, STORAGE_ERRORS):
            raise ArtifactStorageError(f"Could not verify the upload: {exc}") from exc
        raise
    from .uploads import StoredUpload

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
        _fail_session(session, str(getattr(exc, "detail", exc)))
        raise
    session.state, session.artifact = UploadSession.State.COMPLETED, artifact
    session.save(update_fields=["state", "artifact"])
    return artifact


def abort_direct_upload(session, *, reason="aborted by the client", state=UploadSession.State.ABORTED):
    """Abort a pending upload: S3 drops the parts sent so far."""
    if session.state != UploadSession.State.PENDING:
        raise Conflict(f"This upload is {session.state}; only a pending upload can be aborted.")
    try:
        _abort_multipart(session)
    except STORAGE_ERRORS as exc:
        raise ArtifactStorageError(f"Could not abort the upload: {exc}") from exc
    _fail_session(session, reason, state=state)
