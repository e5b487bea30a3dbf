"""Writes that touch several rows or the object storage.

The rules that keep the registry consistent live here:
- a file is streamed to storage *before* its row is written, outside any transaction, and is
  removed again if the row cannot be written; a storage failure leaves no row;
- files are deleted only after the rows that point at them are gone (``on_commit``);
- uniqueness is enforced by database constraints, so concurrent writers get a clean 409.

Beside them: ``direct_uploads`` (S3 uploads in presigned parts) and ``entries`` (the Intel API's
writes) build on these services; ``reads`` (resolve, compare) and ``downloads`` (HTTP file
responses) only read; ``storage`` does every object-storage call.
"""

import hashlib
import json
import logging
import uuid
from functools import partial

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.http import Http404

from . import events
from .errors import Conflict
from .inspection.service import schedule_inspection
from .lib.validation import full_clean
from .models import (
    ALIAS_NAME_VALIDATOR,
    ARTIFACT_FIELDS,
    VERSION_FIELDS,
    Alias,
    AliasEvent,
    Artifact,
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    normalize_alias_name,
)
from .storage import artifact_key, check_storage, delete_files, save_file

logger = logging.getLogger(__name__)


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
    alias=None,
):
    """Append one entry to the audit log, in the caller's transaction.

    Give ``instance`` for a registry object (type, id, text and model name are taken from it), or
    ``object_type``/``object_id``/``object_repr`` for anything else. Importers call this with
    ``action="import"`` for what they bring in beyond ``register_artifact``.
    Every audited write passes here, so this is also where its event is written to the outbox
    (``events.emit_for_audit``); ``alias`` is ``(registered_model, from_version, to_version,
    reason)`` for an alias change.
    """
    if instance is not None:
        object_type = object_type or instance._meta.model_name
        object_id = object_id or str(instance.pk)
        object_repr = object_repr or str(instance)
        registered_model = registered_model if registered_model is not None else _model_name_of(instance)
    actor = user if user is not None and user.is_authenticated else None
    entry = AuditEntry.objects.create(
        action=action,
        actor=actor,
        actor_name=actor.get_username() if actor else "",
        object_type=object_type,
        object_id=str(object_id),
        object_repr=(object_repr or "")[:300],
        registered_model=registered_model or "",
        changes=changes or {},
    )
    events.emit_for_audit(entry, user=actor, instance=instance, alias=alias)
    return entry


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
    """Run model validation; what the database checks anyway is left to it (see ``full_clean``)."""
    return full_clean(instance, exclude)


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
    if existing_version:
        existing_version.check_takes_artifacts()
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
            **Artifact.variant_key(fields),
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
    return save_file(artifact_key(artifact.id, artifact.original_filename), fileobj)


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
            # Every writer registers here, so every file gets inspected, once the row is committed.
            transaction.on_commit(partial(schedule_inspection, artifact.pk))
    except BaseException:
        delete_files([stored_name])
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
        if not RegisteredModel.objects.filter(pk=registered_model.pk).exists():
            raise Conflict(f"The registered model {registered_model.name} was deleted meanwhile.") from exc
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
            version.check_archivable()
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


def _delete_with_files(instance, names, *, artifacts, user=None, cascade=None):
    """Delete a row (and what cascades from it); its files go once the delete has committed.

    Storage is checked first, so when it is down the caller gets a 503 and nothing changes,
    rather than rows gone and objects stranded. The audit entry lists the row's fields and
    ``cascade`` (how many versions, artifacts, ... went with it).

    The ``artifacts`` going with the row are locked first. The inspection worker may be writing
    one's inspection meanwhile; foreign keys are checked at commit, so without the lock its row
    could commit between the cascade's delete of inspections and the artifact's own delete, and
    this delete would fail on the key. With it, the worker's commit waits for this one (and then
    finds the artifact gone), or came first and its row is deleted with the artifact.
    """
    names = [n for n in names if n]
    if names:
        check_storage()
    with transaction.atomic():
        list(artifacts.select_for_update().order_by("pk").values_list("pk", flat=True))
        changes = diff(snapshot(instance), {})
        changes.update({key: [count, None] for key, count in (cascade or {}).items() if count})
        record_audit(action=AuditEntry.Action.DELETE, instance=instance, user=user, changes=changes)
        instance.delete()
        transaction.on_commit(lambda: delete_files(names))


def delete_artifact(artifact, *, user=None):
    """Delete an artifact and its file."""
    _delete_with_files(artifact, [artifact.file.name], artifacts=Artifact.objects.filter(pk=artifact.pk), user=user)


def delete_version(version, *, user=None):
    """Delete a version, all of its artifacts and their files; refused (409) while an alias
    points at it, so "production" never dangles."""
    version.refuse_while_aliased("move or delete them first.")
    names = list(version.artifacts.values_list("file", flat=True))
    _delete_with_files(
        version, names, artifacts=Artifact.objects.filter(version=version), user=user, cascade={"artifacts": len(names)}
    )


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
        artifacts=Artifact.objects.filter(version__registered_model=registered_model),
        user=user,
        cascade={"versions": version_count, "artifacts": len(names), "aliases": registered_model.aliases.count()},
    )


# Writes for clients that see one variant together with its version's shared fields as a single
# "entry" (the Intel-compatible API in ``models_app.intel``).


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
            target.check_takes_artifacts()
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


def checked_alias_name(name):
    """The alias name in its one spelling (``models.normalize_alias_name``), refused unless it is
    a slug, so "Production" cannot dodge the protected "production"."""
    name = normalize_alias_name(name)
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
        alias=(registered_model, from_version, to_version, reason),
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
    # no_key: the history row written next refers to the version the alias leaves, which another
    # move may hold as its target; a plain FOR UPDATE there blocks that foreign-key check, and two
    # moves in opposite directions deadlock. Archiving's FOR UPDATE still waits for this lock.
    target = ModelVersion.objects.select_for_update(no_key=True).filter(pk=version.pk).order_by().first()
    if target is None:
        raise ValidationError({"version": f"{registered_model.name} has no such version."})
    target.check_alias_target(registered_model)
    return target


def set_alias(*, registered_model, name, version, user=None, reason=""):
    """Point alias ``name`` of ``registered_model`` at ``version``, creating the alias if needed.

    Returns ``(alias, event)``; ``event`` is None when the alias already pointed there (nothing is
    written). Concurrent callers serialise on the alias row (``SELECT ... FOR UPDATE``); when two
    create the same new alias at once the database's unique constraint lets one insert and the
    other then moves the row the first one made, so both moves are in the history.
    """
    name = checked_alias_name(name)
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
    name = checked_alias_name(name)
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
    name = checked_alias_name(name)
    with transaction.atomic():
        alias = _locked_alias(registered_model, name)
        if alias is None:
            raise Http404(f"{registered_model.name} has no alias {name}.")
        event = _alias_event(name, registered_model, AliasEvent.Action.DELETE, alias.version, None, user, reason)
        _audit_alias(AuditEntry.Action.ALIAS_DELETE, registered_model, name, alias.version, None, user, reason)
        alias.delete()
    return event
