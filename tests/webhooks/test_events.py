"""The outbox: every write announces itself, in its own transaction, with the documented shape."""

import pytest
from django.db import transaction

from models_app import services
from models_app.models import Event, ModelVersion
from tests.conftest import grant
from webhooks.payloads import DATA_SERIALIZERS, example, family_of

pytestmark = pytest.mark.django_db

ALIASES = "/api/v1/registered-models/person-detection/aliases/"


@pytest.fixture
def api_client(api_client, user):
    """The usual writer, allowed to move protected aliases (production) too."""
    grant(user, "promote_alias")
    return api_client


def types():
    return list(Event.objects.order_by("id").values_list("type", flat=True))


def assert_documented(event):
    """The payload has exactly the keys of its documented example and schema."""
    assert (
        set(event.payload) == set(example(event.type)["data"]) == set(DATA_SERIALIZERS[family_of(event.type)]().fields)
    )


def test_an_upload_announces_the_new_model_version_and_artifact_in_order(upload, user):
    response = upload(b"model")
    assert response.status_code == 201
    assert types() == ["registered_model.created", "version.created", "artifact.created"]
    event = Event.objects.get(type="artifact.created")
    assert event.registered_model_name == "person-detection"
    assert event.payload["artifact"]["id"] == response.json()["id"]
    assert event.payload["artifact"]["sha256"] == response.json()["sha256"]
    assert event.payload["version"]["version"] == "1"
    assert event.payload["actor"] == {"id": user.pk, "username": "alice"}
    for event in Event.objects.all():
        assert_documented(event)


def test_a_refused_write_announces_nothing(upload):
    assert upload(b"model").status_code == 201
    before = Event.objects.count()
    assert upload(b"other").status_code == 409  # the same variant again
    assert Event.objects.count() == before


def test_a_change_that_rolls_back_leaves_no_event(registered_model, user):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.create_version(registered_model=registered_model, version="9", user=user)
        assert types() == ["version.created"]
        raise RuntimeError("the caller's transaction fails after the service returned")
    assert types() == []
    assert not ModelVersion.objects.filter(version="9").exists()


def test_an_alias_move_announces_alias_moved_with_from_and_to(api_client, upload, user):
    for label in ("1", "2"):
        assert upload(f"v{label}".encode(), version=label).status_code == 201
    assert api_client.put(f"{ALIASES}production/", {"version": "1"}, format="json").status_code == 201
    response = api_client.put(f"{ALIASES}production/", {"version": "2", "reason": "better mAP"}, format="json")
    assert response.status_code == 200
    moved = Event.objects.get(type="alias.moved")
    v1, v2 = ModelVersion.objects.get(version="1"), ModelVersion.objects.get(version="2")
    assert moved.payload["alias"] == {"name": "production"}
    assert moved.payload["from_version"] == {"id": str(v1.pk), "version": "1", "status": "active"}
    assert moved.payload["to_version"] == {"id": str(v2.pk), "version": "2", "status": "active"}
    assert moved.payload["reason"] == "better mAP"
    assert moved.registered_model_id == v1.registered_model_id
    assert_documented(moved)

    assert api_client.post(f"{ALIASES}production/rollback/", {}, format="json").status_code == 200
    assert api_client.delete(f"{ALIASES}production/").status_code in (200, 204)
    assert types()[-4:] == ["alias.set", "alias.moved", "alias.rolled_back", "alias.deleted"]
    deleted = Event.objects.get(type="alias.deleted")
    assert deleted.payload["to_version"] is None and deleted.payload["from_version"]["version"] == "1"


def test_archiving_and_restoring_a_version_have_their_own_types(model_version, user):
    services.update_version(model_version, fields={"status": "archived"}, user=user)
    services.update_version(model_version, fields={"status": "active"}, user=user)
    services.update_version(model_version, fields={"description": "new"}, user=user)
    assert types() == ["version.archived", "version.restored", "version.updated"]
    archived = Event.objects.get(type="version.archived")
    assert archived.payload["changes"] == {"status": ["active", "archived"]}
    assert_documented(archived)


def test_deleting_a_model_announces_one_event_with_what_went_with_it(upload, api_client):
    assert upload(b"model").status_code == 201
    assert api_client.delete("/api/v1/registered-models/person-detection/?force=true").status_code == 204
    deleted = Event.objects.get(type="registered_model.deleted")
    assert deleted.payload["changes"]["versions"] == [1, None]
    assert deleted.payload["changes"]["artifacts"] == [1, None]
    assert_documented(deleted)


def test_an_admin_edit_is_announced(admin_client, registered_model):
    response = admin_client.post(
        f"/admin/models_app/registeredmodel/{registered_model.pk}/change/",
        {
            "name": "person-detection",
            "description": "Edited in the admin.",
            "tags": "{}",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content
    event = Event.objects.get(type="registered_model.updated")
    assert event.payload["changes"] == {"description": ["Finds people.", "Edited in the admin."]}
    assert event.payload["actor"]["username"] == "admin"


def test_a_stale_geti_import_is_announced_as_failed(db, settings):
    from datetime import timedelta

    from django.utils import timezone

    from geti_integration import importer
    from geti_integration.models import ImportJob

    old = timezone.now() - timedelta(hours=1)
    job = ImportJob.objects.create(
        project_id="p1", group_id="g1", model_id="m1", optimized_model_id="o1", state="running", heartbeat_at=old
    )
    assert importer.fail_stale_jobs(60) == 1
    event = Event.objects.get(type="geti_import.failed")
    assert event.payload["job"]["id"] == str(job.pk)
    assert event.payload["job"]["state"] == "failed"
    assert "stopped" in event.payload["job"]["error"]
    assert event.payload["registered_model"] is None
    assert_documented(event)


def test_every_example_matches_its_schema():
    from webhooks.payloads import ALL_TYPES

    for event_type in ALL_TYPES:
        body = example(event_type)
        serializer = DATA_SERIALIZERS[family_of(event_type)](data=body["data"])
        assert serializer.is_valid(), (event_type, serializer.errors)
