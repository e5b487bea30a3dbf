import datetime as dt
import io

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from models_app import services
from models_app.models import AuditEntry, ModelVersion, RegisteredModel
from tests.conftest import count_queries

pytestmark = pytest.mark.django_db


def entries(**filters):
    return [(e.action, e.object_type, e.actor_name) for e in AuditEntry.objects.filter(**filters).order_by("id")]


def test_an_upload_records_the_model_version_and_artifact_it_created(upload):
    body = upload(b"x" * 10, score="0.5").json()
    assert entries() == [
        ("create", "registeredmodel", "alice"),
        ("create", "modelversion", "alice"),
        ("upload", "artifact", "alice"),
    ]
    artifact_entry = AuditEntry.objects.get(action="upload")
    assert artifact_entry.object_id == body["id"]
    assert artifact_entry.registered_model == "person-detection"
    assert artifact_entry.object_repr == "person-detection:1 FP32/CPU/openvino"
    changes = artifact_entry.changes
    assert changes["size"] == [None, 10] and changes["score"] == [None, 0.5]
    assert changes["sha256"] == [None, body["sha256"]]
    assert "external_id" not in changes  # empty on creation: left out


def test_an_upload_to_an_existing_version_records_only_the_upload(upload):
    upload(b"a")
    upload(b"b", precision="INT8")
    assert [e[0] for e in entries()] == ["create", "create", "upload", "upload"]


def test_a_refused_upload_records_nothing(upload):
    upload(b"a")
    before = AuditEntry.objects.count()
    assert upload(b"b").status_code == 409
    assert AuditEntry.objects.count() == before


def test_an_artifact_update_records_only_the_changed_fields(api_client, artifact):
    api_client.patch(f"/api/v1/artifacts/{artifact.id}/", {"score": 0.7, "format": "openvino"}, format="json")
    entry = AuditEntry.objects.get(action="update")
    assert (entry.object_type, entry.object_id) == ("artifact", str(artifact.id))
    assert entry.changes == {"score": [None, 0.7]}


def test_deletes_record_what_was_deleted(api_client, upload, django_capture_on_commit_callbacks):
    first = upload(b"a").json()
    upload(b"b", precision="INT8")
    upload(b"c", version="2")
    with django_capture_on_commit_callbacks(execute=True):
        api_client.delete(f"/api/v1/artifacts/{first['id']}/")
        api_client.delete(f"/api/v1/versions/{ModelVersion.objects.get(version='1').id}/")
        api_client.delete("/api/v1/registered-models/person-detection/?force=true")
    deletes = list(AuditEntry.objects.filter(action="delete").order_by("id"))
    assert [e.object_type for e in deletes] == ["artifact", "modelversion", "registeredmodel"]
    assert deletes[0].changes["sha256"] == [first["sha256"], None]
    assert deletes[1].changes["artifacts"] == [1, None]
    assert deletes[2].changes["versions"] == [1, None] and deletes[2].changes["name"] == ["person-detection", None]
    # The log outlives the objects it describes.
    assert not RegisteredModel.objects.exists()
    assert AuditEntry.objects.filter(registered_model="person-detection").count() == 9


def test_creating_and_updating_models_and_versions_through_the_api_is_recorded(api_client):
    assert (
        api_client.post("/api/v1/registered-models/", {"name": "m", "tags": {"team": "cv"}}, format="json").status_code
        == 201
    )
    api_client.patch("/api/v1/registered-models/m/", {"description": "Finds things."}, format="json")
    response = api_client.post(
        "/api/v1/versions/", {"registered_model": "m", "version": "1", "provenance": {"dataset": "coco"}}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["created_by"] == "alice"
    api_client.patch(f"/api/v1/versions/{response.json()['id']}/", {"status": "deprecated"}, format="json")
    assert entries() == [
        ("create", "registeredmodel", "alice"),
        ("update", "registeredmodel", "alice"),
        ("create", "modelversion", "alice"),
        ("update", "modelversion", "alice"),
    ]
    created_model, updated_model, created_version, updated_version = AuditEntry.objects.order_by("id")
    assert created_model.changes == {"name": [None, "m"], "tags": [None, {"team": "cv"}]}
    assert updated_model.changes == {"description": ["", "Finds things."]}
    assert created_version.changes["provenance"] == [None, {"dataset": "coco"}]
    assert updated_version.changes == {"status": ["active", "deprecated"]}


def test_a_duplicate_model_name_is_a_conflict_and_records_nothing(api_client, registered_model):
    response = api_client.post("/api/v1/registered-models/", {"name": "person-detection"}, format="json")
    assert response.status_code == 409
    assert not AuditEntry.objects.exists()


def test_alias_writes_are_recorded(api_client, upload):
    upload(b"1", version="1")
    upload(b"2", version="2")
    aliases = "/api/v1/registered-models/person-detection/aliases/"
    api_client.put(f"{aliases}staging/", {"version": "1"}, format="json")
    api_client.put(f"{aliases}staging/", {"version": "2", "reason": "better"}, format="json")
    api_client.post(f"{aliases}staging/rollback/")
    api_client.delete(f"{aliases}staging/")
    alias_entries = list(AuditEntry.objects.filter(object_type="alias").order_by("id"))
    assert [(e.action, e.object_id, e.changes["version"]) for e in alias_entries] == [
        ("alias_set", "staging", [None, "1"]),
        ("alias_move", "staging", ["1", "2"]),
        ("alias_rollback", "staging", ["2", "1"]),
        ("alias_delete", "staging", ["1", None]),
    ]
    assert alias_entries[1].changes["reason"] == [None, "better"]
    assert alias_entries[0].object_repr == "person-detection@staging"


def test_importers_record_imports(user, bucket):
    handle = io.BytesIO(b"remote-model")
    artifact = services.register_artifact(
        model_name="geti-model", version="1", fileobj=handle, user=user, audit_action=AuditEntry.Action.IMPORT
    )
    services.record_audit(
        action=AuditEntry.Action.IMPORT, instance=artifact.version, user=user, changes={"project_id": [None, "p-1"]}
    )
    assert [e[0] for e in entries()] == ["create", "create", "import", "import"]


def test_an_admin_edit_is_recorded(admin_client, registered_model):
    response = admin_client.post(
        f"/admin/models_app/registeredmodel/{registered_model.pk}/change/",
        {
            "name": "person-detection",
            "description": "Edited.",
            "tags": "{}",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.actor_name) == ("update", "admin")
    assert entry.changes == {"description": ["Finds people.", "Edited."]}


def test_entries_cannot_be_changed_or_deleted_through_the_api(api_client, admin_user, upload):
    """Not even a superuser: the endpoint has no write methods at all."""
    upload(b"a")
    entry = AuditEntry.objects.first()
    url = f"/api/v1/audit/{entry.id}/"
    superuser = APIClient()
    superuser.force_authenticate(admin_user)
    assert superuser.get(url).status_code == 200
    for method in ("put", "patch", "delete"):
        assert getattr(superuser, method)(url, {"action": "delete"}, format="json").status_code == 405
        # A user who may not read the audit log is refused before the method is looked at.
        assert getattr(api_client, method)(url, {"action": "delete"}, format="json").status_code == 403
    assert superuser.post("/api/v1/audit/", {"action": "create"}, format="json").status_code == 405
    assert list(AuditEntry.objects.values_list("action", flat=True)) == ["upload", "create", "create"]


def test_entries_cannot_be_changed_or_deleted_in_code(upload):
    upload(b"a")
    entry = AuditEntry.objects.first()
    entry.action = "delete"
    with pytest.raises(TypeError):
        entry.save()
    with pytest.raises(TypeError):
        entry.delete()
    with pytest.raises(TypeError):
        AuditEntry.objects.all().delete()
    with pytest.raises(TypeError):
        AuditEntry.objects.update(action="delete")
    assert AuditEntry.objects.filter(action="delete").count() == 0


def test_the_admin_shows_entries_read_only(admin_client, upload):
    upload(b"a")
    entry = AuditEntry.objects.first()
    assert admin_client.get("/admin/models_app/auditentry/").status_code == 200
    assert admin_client.get(f"/admin/models_app/auditentry/{entry.pk}/change/").status_code == 200
    assert admin_client.get("/admin/models_app/auditentry/add/").status_code == 403
    assert admin_client.get(f"/admin/models_app/auditentry/{entry.pk}/delete/").status_code == 403
    response = admin_client.post(f"/admin/models_app/auditentry/{entry.pk}/change/", {"action": "delete"})
    assert response.status_code == 403
    assert AuditEntry.objects.filter(action="delete").count() == 0


@pytest.mark.parametrize(
    "query, expected",
    [
        ("object_type=artifact", {"upload"}),
        ("action=create", {"create"}),
        ("actor=alice", {"create", "upload"}),
        ("actor=bob", set()),
        ("registered_model=person-detection", {"create", "upload"}),
        ("registered_model=other", set()),
    ],
)
def test_it_filters_entries(api_client, upload, query, expected):
    upload(b"a")
    response = api_client.get(f"/api/v1/audit/?{query}")
    assert response.status_code == 200
    assert {e["action"] for e in response.json()["results"]} == expected


def test_it_filters_by_object_and_time(api_client, upload):
    body = upload(b"a").json()
    response = api_client.get(f"/api/v1/audit/?object_type=artifact&object_id={body['id']}")
    assert [e["action"] for e in response.json()["results"]] == ["upload"]
    later = (timezone.now() + dt.timedelta(minutes=1)).isoformat()
    assert api_client.get("/api/v1/audit/", {"since": later}).json()["count"] == 0
    assert api_client.get("/api/v1/audit/", {"until": later}).json()["count"] == 3


def test_the_audit_list_query_count_does_not_grow(api_client, upload, django_assert_num_queries):
    upload(b"a")
    few = count_queries(api_client, "/api/v1/audit/")
    for i in range(5):
        upload(str(i).encode(), version=str(i + 2))
    # 1 page (it holds every row, so it is the count)
    with django_assert_num_queries(1):
        assert api_client.get("/api/v1/audit/").json()["count"] == 13
    assert count_queries(api_client, "/api/v1/audit/") == few


@pytest.fixture
def intel_client(live_server, user, bucket):
    from rest_framework.authtoken.models import Token

    from tests.models_app.test_intel_compat import IntelClient

    with IntelClient(live_server.url, Token.objects.create(user=user).key) as client:
        yield client


def test_writes_through_the_intel_compatible_api_are_recorded(intel_client):
    response = intel_client.register(category="Detection")
    assert response.status_code == 201, response.text
    entry_id = response.text
    assert (
        intel_client.put(f"/models/{entry_id}", data={"category": "Classification", "version": "2"}).status_code == 200
    )
    assert intel_client.delete(f"/models/{entry_id}").status_code == 204
    assert entries() == [
        ("create", "registeredmodel", "alice"),
        ("create", "modelversion", "alice"),
        ("upload", "artifact", "alice"),
        ("create", "modelversion", "alice"),
        ("update", "artifact", "alice"),
        ("update", "modelversion", "alice"),
        ("delete", "artifact", "alice"),
    ]
    moved = AuditEntry.objects.filter(action="update", object_type="artifact").get()
    assert list(moved.changes) == ["version"]
    assert AuditEntry.objects.filter(action="update", object_type="modelversion").get().changes == {
        "category": ["Detection", "Classification"]
    }
