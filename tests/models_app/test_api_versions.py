import pytest

from models_app.models import Artifact, ModelVersion
from tests.conftest import bucket_keys

pytestmark = pytest.mark.django_db


def test_it_creates_a_version_of_an_existing_model(api_client, registered_model, user):
    response = api_client.post(
        "/api/v1/versions/",
        {
            "registered_model": "person-detection",
            "version": "2",
            "labels": ["person"],
            "overview": {"dataset": "coco"},
            "architecture": "YOLOX",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    version = ModelVersion.objects.get(version="2")
    assert version.labels == ["person"] and version.created_by == user
    assert response.json()["created_by"] == "alice"


def test_a_created_version_and_model_answer_as_they_read_back(api_client):
    """The 201 of a create carries every field a read of the same object shows (the totals a
    list shows included), with the same values."""
    created = api_client.post("/api/v1/registered-models/", {"name": "fresh"}, format="json")
    assert created.status_code == 201
    assert created.json() == api_client.get("/api/v1/registered-models/fresh/").json()
    assert created.json()["version_count"] == 0 and created.json()["latest_version_at"] is None
    created = api_client.post("/api/v1/versions/", {"registered_model": "fresh", "version": "1"}, format="json")
    assert created.status_code == 201
    assert created.json() == api_client.get("/api/v1/registered-models/fresh/versions/1/").json()
    assert created.json()["artifact_count"] == 0 and created.json()["total_size"] is None


def test_a_version_of_an_unknown_model_is_refused(api_client):
    response = api_client.post("/api/v1/versions/", {"registered_model": "nope", "version": "1"}, format="json")
    assert response.status_code == 400
    assert "registered_model" in response.json()["error"]["fields"]


def test_a_duplicate_version_is_a_conflict(api_client, model_version):
    response = api_client.post(
        "/api/v1/versions/", {"registered_model": "person-detection", "version": "1"}, format="json"
    )
    assert response.status_code == 409
    assert ModelVersion.objects.count() == 1


def test_labels_must_be_a_list(api_client, registered_model):
    response = api_client.post(
        "/api/v1/versions/", {"registered_model": "person-detection", "version": "2", "labels": "person"}, format="json"
    )
    assert response.status_code == 400
    assert "labels" in response.json()["error"]["fields"]


def test_metadata_updates_are_shared_by_all_variants(api_client, upload):
    version_id = upload(b"a", precision="FP32").json()["version_id"]
    upload(b"b", precision="INT8")
    response = api_client.patch(f"/api/v1/versions/{version_id}/", {"category": "Detection"}, format="json")
    assert response.status_code == 200
    categories = {r["precision"]: r for r in api_client.get("/api/v1/artifacts/?category=detection").json()["results"]}
    assert set(categories) == {"FP32", "INT8"}


def test_a_version_cannot_move_to_another_model(api_client, model_version):
    api_client.post("/api/v1/registered-models/", {"name": "other"}, format="json")
    response = api_client.patch(f"/api/v1/versions/{model_version.id}/", {"registered_model": "other"}, format="json")
    assert response.status_code == 400


def test_deleting_a_version_removes_its_files(api_client, upload, bucket, django_capture_on_commit_callbacks):
    version_id = upload(b"a", precision="FP32").json()["version_id"]
    upload(b"b", precision="INT8")
    keep = upload(b"c", version="2").json()
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.delete(f"/api/v1/versions/{version_id}/").status_code == 204
    assert list(Artifact.objects.values_list("id", flat=True)) == [__import__("uuid").UUID(keep["id"])]
    assert bucket_keys(bucket) == [Artifact.objects.get().file.name]


def test_the_version_list_is_filtered_and_query_count_is_constant(api_client, upload, django_assert_num_queries):
    upload(b"a", version="1", category="Detection", architecture="YOLOX")
    upload(b"b", version="2", category="Segmentation", origin="Geti")
    for i in range(3, 10):
        upload(str(i).encode(), version=str(i))
    assert [v["version"] for v in api_client.get("/api/v1/versions/?category=segmentation").json()["results"]] == ["2"]
    assert [v["version"] for v in api_client.get("/api/v1/versions/?architecture=yolo").json()["results"]] == ["1"]
    # 1 count + the page's ids + its rows with registered model, creator and artifact count/size
    # the first page's rows with artifact stats as subqueries (every row: no count needed)
    with django_assert_num_queries(1):
        body = api_client.get("/api/v1/versions/").json()
    assert body["count"] == 9
    assert all(v["artifact_count"] == 1 for v in body["results"])
