"""Events: what changed in the registry, for webhook subscribers.

Every event is written to the outbox (``Event`` rows) in the transaction of the change it
describes, by ``emit``: a change that rolls back leaves no event, and a committed change always
has one. Registry writes reach ``emit`` through ``services.record_audit``, the one function every
audited write calls (API, Intel API, admin, pages, Geti importer, commands), so no writer can
forget to announce a change; other parts of the registry (Geti import jobs) call ``emit``
directly. The webhooks app reads the outbox and delivers it; nothing here knows about webhooks.

An event's ``payload`` is its ``data``: ids and names of what changed, what changed (an audit
diff, an alias's from and to versions), the actor and the reason where one was given. The type
and the time are columns of the row; docs/webhooks.md documents every type with an example.
"""

from .models import Event

EVENT_TYPES = {
    "registered_model.created": "A registered model was created.",
    "registered_model.updated": "A registered model's name, description or tags changed.",
    "registered_model.deleted": "A registered model was deleted, with its versions, artifacts and aliases.",
    "version.created": "A version was created.",
    "version.updated": "A version's metadata changed (status changes have their own types).",
    "version.archived": "A version was archived.",
    "version.restored": "An archived version was made active (or deprecated) again.",
    "version.deleted": "A version was deleted, with its artifacts.",
    "artifact.created": "An artifact (variant) was registered: uploaded, imported or direct-uploaded.",
    "artifact.updated": "An artifact's metadata changed, or it moved to another version.",
    "artifact.deleted": "An artifact and its file were deleted.",
    "alias.set": "A new alias was pointed at a version.",
    "alias.moved": "An alias was moved from one version to another.",
    "alias.rolled_back": "An alias was moved back to the version it pointed at before its latest move.",
    "alias.deleted": "An alias was deleted.",
    "geti_import.finished": "A Geti import job finished; the artifact is registered.",
    "geti_import.failed": "A Geti import job failed.",
}

# Audit object types (``Model._meta.model_name``) and the event prefix they announce as.
_KINDS = {"registeredmodel": "registered_model", "modelversion": "version", "artifact": "artifact"}
_VERBS = {"create": "created", "update": "updated", "delete": "deleted", "upload": "created", "import": "created"}
_ALIAS_VERBS = {"alias_set": "set", "alias_move": "moved", "alias_rollback": "rolled_back", "alias_delete": "deleted"}


def actor_of(user):
    """``{"id", "username"}`` of an authenticated user, else None (anonymous or the system)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return {"id": user.pk, "username": user.get_username()}


def emit(event_type, *, data, registered_model_id=None, registered_model_name="", actor=None):
    """Write one event to the outbox, in the caller's transaction; returns the Event.

    ``data`` is the type's own part of the payload; ``registered_model`` and ``actor`` are added
    here so every type carries them the same way.
    """
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {event_type!r}.")
    model = {"id": str(registered_model_id), "name": registered_model_name} if registered_model_id else None
    return Event.objects.create(
        type=event_type,
        registered_model_id=registered_model_id,
        registered_model_name=registered_model_name or "",
        payload={"registered_model": model, **data, "actor": actor},
    )


def _version_ref(version):
    return {"id": str(version.pk), "version": version.version, "status": version.status}


def _artifact_ref(artifact):
    return {
        "id": str(artifact.pk),
        "external_id": artifact.external_id,
        "precision": artifact.precision,
        "target_device": artifact.target_device,
        "format": artifact.format,
        "size": artifact.size,
        "sha256": artifact.sha256,
    }


def _object_event(entry, instance):
    """Event type, model id and data for an audit entry about a registered model, version or artifact."""
    kind = _KINDS.get(instance._meta.model_name)
    verb = _VERBS.get(entry.action)
    if kind is None or verb is None:
        return None
    data = {"changes": entry.changes}
    if kind == "registered_model":
        model_id = instance.pk
    elif kind == "version":
        model_id = instance.registered_model_id
        data["version"] = _version_ref(instance)
        status = entry.changes.get("status")
        if entry.action == "update" and status:
            verb = "archived" if status[1] == "archived" else "restored" if status[0] == "archived" else verb
    else:
        model_id = instance.version.registered_model_id
        data["version"] = _version_ref(instance.version)
        data["artifact"] = _artifact_ref(instance)
    return f"{kind}.{verb}", model_id, data


def _alias_event(entry, registered_model, from_version, to_version, reason):
    verb = _ALIAS_VERBS.get(entry.action)
    if verb is None:
        return None
    data = {
        "alias": {"name": entry.object_id},
        "from_version": _version_ref(from_version) if from_version else None,
        "to_version": _version_ref(to_version) if to_version else None,
        "reason": reason or "",
    }
    return f"alias.{verb}", registered_model.pk, data


def emit_for_audit(entry, *, user=None, instance=None, alias=None):
    """The event announcing what the audit ``entry`` records, written in its transaction.

    ``instance`` is the registered model, version or artifact the entry is about (still loaded on
    a delete, which is audited before the row goes); ``alias`` is ``(registered_model,
    from_version, to_version, reason)`` for an alias change. Entries about anything else announce
    nothing; returns the Event or None.
    """
    if alias is not None:
        found = _alias_event(entry, *alias)
    elif instance is not None:
        found = _object_event(entry, instance)
    else:
        found = None
    if found is None:
        return None
    event_type, model_id, data = found
    return emit(
        event_type,
        data=data,
        registered_model_id=model_id,
        registered_model_name=entry.registered_model,
        actor=actor_of(user),
    )
