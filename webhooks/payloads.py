"""What a webhook's body looks like, per event type: OpenAPI components and one example each.

The body is ``{"id", "type", "timestamp", "data"}`` (``delivery.message_body``); ``data`` is the
event's payload, written by ``models_app.events`` (and the Geti importer for Geti imports).
These serializers only describe it (they document ``/api/v1/webhooks/event-types/``, which
returns the examples); tests check that real events have the documented shape.
"""

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from models_app.events import EVENT_TYPES

from .models import PING

FAMILIES = ("registered_model", "version", "artifact", "alias", "geti_import", "webhook")


class RegisteredModelRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()


class VersionRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    version = serializers.CharField()
    status = serializers.CharField(help_text="active, deprecated or archived")


class ArtifactRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField(allow_null=True)
    precision = serializers.CharField()
    target_device = serializers.CharField()
    format = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()


class ActorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()


CHANGES_HELP = (
    "The changed fields as {field: [before, after]} (the audit log's diff); a delete lists the "
    "deleted row's fields and how many versions, artifacts and aliases went with it."
)


class RegisteredModelEventDataSerializer(serializers.Serializer):
    registered_model = RegisteredModelRefSerializer()
    changes = serializers.DictField(help_text=CHANGES_HELP)
    actor = ActorSerializer(allow_null=True)


class VersionEventDataSerializer(RegisteredModelEventDataSerializer):
    version = VersionRefSerializer()


class ArtifactEventDataSerializer(VersionEventDataSerializer):
    artifact = ArtifactRefSerializer()


class AliasNameSerializer(serializers.Serializer):
    name = serializers.CharField()


class AliasEventDataSerializer(serializers.Serializer):
    registered_model = RegisteredModelRefSerializer()
    alias = AliasNameSerializer()
    from_version = VersionRefSerializer(allow_null=True, help_text="None when the alias is set for the first time")
    to_version = VersionRefSerializer(allow_null=True, help_text="None when the alias is deleted")
    reason = serializers.CharField(allow_blank=True)
    actor = ActorSerializer(allow_null=True)


class GetiJobSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    state = serializers.CharField(help_text="done or failed")
    project_id = serializers.CharField()
    project_name = serializers.CharField()
    group_id = serializers.CharField()
    model_id = serializers.CharField()
    optimized_model_id = serializers.CharField()
    name = serializers.CharField()
    error = serializers.CharField(allow_blank=True)


class GetiVersionRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    version = serializers.CharField()


class GetiArtifactRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    external_id = serializers.CharField(allow_null=True)


class GetiImportEventDataSerializer(serializers.Serializer):
    registered_model = RegisteredModelRefSerializer(allow_null=True, help_text="None when the import failed")
    job = GetiJobSerializer()
    version = GetiVersionRefSerializer(allow_null=True)
    artifact = GetiArtifactRefSerializer(allow_null=True)
    actor = ActorSerializer(allow_null=True)


class SubscriptionRefSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField(allow_blank=True)


class PingEventDataSerializer(serializers.Serializer):
    registered_model = serializers.JSONField(allow_null=True, help_text="Always null")
    subscription = SubscriptionRefSerializer()
    actor = ActorSerializer(allow_null=True)


def _types(family):
    return [PING] if family == "webhook" else [t for t in EVENT_TYPES if t.startswith(family + ".")]


DATA_SERIALIZERS = {
    "registered_model": RegisteredModelEventDataSerializer,
    "version": VersionEventDataSerializer,
    "artifact": ArtifactEventDataSerializer,
    "alias": AliasEventDataSerializer,
    "geti_import": GetiImportEventDataSerializer,
    "webhook": PingEventDataSerializer,
}


def _envelope(family):
    """``{"id", "type", "timestamp", "data"}`` for the event types of one family."""
    data_serializer = DATA_SERIALIZERS[family]
    name = data_serializer.__name__.replace("DataSerializer", "")
    attrs = {
        "id": serializers.CharField(help_text="The event's id (evt_...), the same for every subscription"),
        "type": serializers.ChoiceField(choices=_types(family)),
        "timestamp": serializers.DateTimeField(help_text="When the change was made"),
        "data": data_serializer(),
        "Meta": type("Meta", (), {"ref_name": f"Webhook{name}"}),
    }
    return type(f"Webhook{name}Serializer", (serializers.Serializer,), attrs)


ENVELOPES = {family: _envelope(family) for family in FAMILIES}

WEBHOOK_EVENT = PolymorphicProxySerializer(
    component_name="WebhookEvent",
    serializers=list(ENVELOPES.values()),
    resource_type_field_name=None,
)


def family_of(event_type):
    return "webhook" if event_type == PING else event_type.split(".", 1)[0]


# --- examples ---------------------------------------------------------------------------------

_MODEL = {"id": "0b6f3c1e-5d2a-4f7e-9a41-2c8d7e6f1a10", "name": "person-detection"}
_V1 = {"id": "6a1d9e22-8f0b-4c3d-b2a7-51e4c9d0f3b8", "version": "1", "status": "active"}
_V2 = {"id": "9c4b7a10-2e6d-4b8f-a1c3-7d5e0f2b6a94", "version": "2", "status": "active"}
_ACTOR = {"id": 3, "username": "alice"}
_ARTIFACT = {
    "id": "3f2e1d0c-9b8a-4765-8432-10fedcba9876",
    "external_id": None,
    "precision": "INT8",
    "target_device": "NPU",
    "format": "openvino",
    "size": 48213504,
    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
}
_JOB = {
    "id": "e7a1c2d3-4b5f-4a6e-8d9c-0b1a2c3d4e5f",
    "project_id": "6650a5c8b9a2f3d4e5f60718",
    "project_name": "person-detection",
    "group_id": "6650a5c8b9a2f3d4e5f60720",
    "model_id": "6650a5c8b9a2f3d4e5f60730",
    "optimized_model_id": "6650a5c8b9a2f3d4e5f60731",
    "name": "YOLOX-TINY OpenVINO INT8",
}


def _example_data(event_type):
    verb = event_type.split(".", 1)[1]
    if event_type.startswith("registered_model."):
        changes = {
            "created": {"name": [None, "person-detection"], "description": [None, "Finds people."]},
            "updated": {"description": ["Finds people.", "Finds people in video."]},
            "deleted": {"name": ["person-detection", None], "versions": [2, None], "artifacts": [5, None]},
        }[verb]
        return {"registered_model": _MODEL, "changes": changes, "actor": _ACTOR}
    if event_type.startswith("version."):
        changes = {
            "created": {"registered_model": [None, _MODEL["id"]], "version": [None, "1"], "status": [None, "active"]},
            "updated": {"description": ["", "Trained on the March set."]},
            "archived": {"status": ["active", "archived"]},
            "restored": {"status": ["archived", "active"]},
            "deleted": {"version": ["1", None], "status": ["active", None], "artifacts": [3, None]},
        }[verb]
        version = {**_V1, "status": "archived"} if verb == "archived" else _V1
        return {"registered_model": _MODEL, "changes": changes, "version": version, "actor": _ACTOR}
    if event_type.startswith("artifact."):
        changes = (
            {"score": [0.88, 0.91]} if verb == "updated" else {"precision": [None, "INT8"], "size": [None, 48213504]}
        )
        if verb == "deleted":
            changes = {key: [new, old] for key, (old, new) in changes.items()}
        return {"registered_model": _MODEL, "changes": changes, "version": _V1, "artifact": _ARTIFACT, "actor": _ACTOR}
    if event_type.startswith("alias."):
        from_version, to_version = {
            "set": (None, _V1),
            "moved": (_V1, _V2),
            "rolled_back": (_V2, _V1),
            "deleted": (_V1, None),
        }[verb]
        return {
            "registered_model": _MODEL,
            "alias": {"name": "production"},
            "from_version": from_version,
            "to_version": to_version,
            "reason": "mAP 0.91 on the March set" if verb == "moved" else "",
            "actor": _ACTOR,
        }
    if event_type.startswith("geti_import."):
        done = verb == "finished"
        return {
            "registered_model": _MODEL if done else None,
            "job": {**_JOB, "state": "done" if done else "failed", "error": "" if done else "Geti is unreachable."},
            "version": {"id": _V1["id"], "version": "1"} if done else None,
            "artifact": {"id": _ARTIFACT["id"], "external_id": _JOB["optimized_model_id"]} if done else None,
            "actor": _ACTOR,
        }
    return {
        "registered_model": None,
        "subscription": {"id": "51d0e6f4-7a2b-4c9d-8e1f-3a4b5c6d7e8f", "name": "CI"},
        "actor": _ACTOR,
    }


def example(event_type):
    """A complete body of ``event_type``, as a subscriber receives it."""
    return {
        "id": "evt_2f1c9a7e5b3d4c8e9a0b1c2d3e4f5a6b",
        "type": event_type,
        "timestamp": "2026-11-30T16:40:12.345678Z",
        "data": _example_data(event_type),
    }


ALL_TYPES = {**EVENT_TYPES, PING: "Sent on request (POST .../subscriptions/{id}/ping/) to test a subscription."}
