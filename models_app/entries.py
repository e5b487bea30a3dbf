"""Writes for clients that see one variant together with its version's shared fields as a single
"entry" (the Intel-compatible API in ``models_app.intel``).

An entry's writes follow Intel's rules on top of the registry's own: a client-chosen id may not be
another entry's UUID, a new variant must agree with the shared fields of its siblings, and a
refused write names the entry it clashes with. The files and rows themselves are written by
``services.register_artifact`` and ``services.change_artifact``, like every other writer's.
"""

import uuid

from .errors import Conflict
from .models import Artifact, ModelVersion
from .services import change_artifact, register_artifact, update_version


class EntryConflict(Conflict):
    """The write clashes with an existing entry; ``existing`` is that entry's artifact."""

    def __init__(self, existing, detail=""):
        message = f"The requested action could not be completed due to a conflict with model '{existing.public_id}'."
        super().__init__(f"{message} {detail}".strip())
        self.existing = existing


def is_uuid(value):
    """True for a UUID in its canonical text form (an entry's id when the client chose none)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def refuse_entry_conflicts(*, name, version, external_id, version_fields):
    """Intel's conflicts that need no file: a client-chosen id that is a taken UUID, and shared
    fields that differ from the other variants of the same version. Returns the version (or None)
    and its first variant (or None)."""
    if external_id and is_uuid(external_id):
        clash = Artifact.objects.filter(pk=external_id).first()
        if clash:
            raise EntryConflict(clash)
    existing = ModelVersion.objects.filter(registered_model__name=name, version=version).first()
    sibling = existing.artifacts.order_by("created_at").first() if existing else None
    if sibling:
        # Shared fields live once on the version: a new variant must agree with its siblings.
        differing = [key for key, value in version_fields.items() if getattr(existing, key) != value]
        if differing:
            raise EntryConflict(
                sibling,
                (
                    f"Version '{version}' of '{name}' has other values for {', '.join(differing)}, which all "
                    f"its variants share. Send the same values, or change them with PUT /models/{{id}}."
                ),
            )
    return existing, sibling


def entry_taken_by(*, name, version, external_id, artifact_fields):
    """The entry that already has this client-chosen id or this variant, if any."""
    if external_id:
        clash = Artifact.objects.filter(external_id=external_id).first()
        if clash:
            return clash
    return _same_variant(artifact_fields, version__registered_model__name=name, version__version=version)


def _same_variant(artifact_fields, **where):
    """The artifact holding the variant key these fields would get (defaults and case as the model
    normalises them), found after the database refused a duplicate."""
    return Artifact.objects.filter(**Artifact.variant_key(artifact_fields), **where).first()


def check_new_entry(*, name, version, external_id, version_fields, artifact_fields):
    """Raise the EntryConflict that ``register_entry`` would raise for this metadata, before its
    file is read (the upload parsers call this when the file part starts)."""
    refuse_entry_conflicts(name=name, version=version, external_id=external_id, version_fields=version_fields)
    clash = entry_taken_by(name=name, version=version, external_id=external_id, artifact_fields=artifact_fields)
    if clash:
        raise EntryConflict(clash)


def register_entry(
    *, name, version, fileobj, external_id="", created_date="", version_fields, artifact_fields, user=None
):
    """Register one entry: a variant of (a new or existing) version of a registered model.

    ``created_date`` (Intel's client-given date) goes into the version's provenance. A version
    without variants (its entries were deleted, or it was made through /api/v1/) takes the shared
    fields of its first entry, so DELETE and re-POST works as with Intel. Raises EntryConflict
    (409) naming the entry it clashes with, or what ``register_artifact`` raises.
    """
    version_fields = dict(version_fields)
    existing, sibling = refuse_entry_conflicts(
        name=name, version=version, external_id=external_id, version_fields=version_fields
    )
    if created_date and not existing:
        version_fields["provenance"] = {"created_date": created_date}
    sha256 = getattr(fileobj, "sha256", None)
    try:
        artifact = register_artifact(
            model_name=name,
            version=version,
            fileobj=fileobj,
            user=user,
            version_fields=version_fields,
            artifact_fields={**artifact_fields, "external_id": external_id},
            size=fileobj.size if sha256 else None,
            sha256=sha256,
            filename=fileobj.name,
            content_type=fileobj.content_type or "",
        )
    except Conflict as exc:
        clash = entry_taken_by(name=name, version=version, external_id=external_id, artifact_fields=artifact_fields)
        if clash:
            raise EntryConflict(clash) from exc
        raise
    if existing and not sibling:
        # register_artifact has validated these values already.
        if created_date:
            version_fields["provenance"] = {**existing.provenance, "created_date": created_date}
        if version_fields:
            update_version(artifact.version, fields=version_fields, user=user)
    return artifact


def change_entry(artifact, *, name="", version="", created_date="", version_fields, artifact_fields, user=None):
    """Partial update of an entry. Shared fields change the entry's version, so its sibling
    variants show them too; a new ``name`` or ``version`` moves the entry to that version.

    ``created_date`` is merged into the provenance of the version the entry ends up in, keeping
    that version's other provenance keys. Raises EntryConflict (409) naming the entry that holds
    the variant, or what ``change_artifact`` raises.
    """
    version_fields = dict(version_fields)
    model_name, version_name = name or artifact.registered_model.name, version or artifact.version.version
    if created_date:
        target = (
            ModelVersion.objects.filter(registered_model__name=model_name, version=version_name).first()
            or artifact.version
        )
        version_fields["provenance"] = {**target.provenance, "created_date": created_date}
    try:
        change_artifact(
            artifact,
            model_name=name,
            version=version,
            version_fields=version_fields,
            artifact_fields=artifact_fields,
            user=user,
        )
    except Conflict as exc:
        # ``artifact`` holds the values the database refused: find the entry they clash with.
        clash = _same_variant(
            {"precision": artifact.precision, "target_device": artifact.target_device, "format": artifact.format},
            version__registered_model__name=model_name,
            version__version=version_name,
        )
        if clash and clash.pk != artifact.pk:
            raise EntryConflict(clash) from exc
        raise
    return artifact
