import pytest

from models_app.models import Artifact, ModelVersion, RegisteredModel
from tests.conftest import bucket_keys

pytestmark = pytest.mark.django_db


def test_it_creates_a_registered_model(api_client):
    response = api_client.post(
        "/api/v1/registered-models/",
        {"name": "face-detection", "description": "Faces.", "tags": {"team": "vision"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "face-detection"
    assert RegisteredModel.objects.get().tags == {"team": "vision"}


def test_a_duplicate_name_is_a_conflict(api_client, registered_model):
    response = api_client.post("/api/v1/registered-models/", {"name": registered_model.name}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert RegisteredModel.objects.count() == 1


def test_names_with_slashes_are_refused(api_client):
    response = api_client.post("/api/v1/registered-models/", {"name": "a/b"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]


def test_tags_must_be_key_value_strings(api_client):
    response = api_client.post("/api/v1/registered-models/", {"name": "m", "tags": {"team": 3}}, format="json")
    assert response.status_code == 400
    assert "tags" in response.json()["error"]["fields"]


def test_it_is_looked_up_by_name(api_client, model_version):
    response = api_client.get("/api/v1/registered-models/person-detection/")
    assert response.status_code == 200
    assert response.json()["version_count"] == 1


def test_it_updates_the_description(api_client, registered_model):
    response = api_client.patch("/api/v1/registered-models/person-detection/", {"description": "New."}, format="json")
    assert response.status_code == 200
    registered_model.refresh_from_db()
    assert registered_model.description == "New."


def test_delete_with_versions_needs_force(api_client, artifact, bucket):
    response = api_client.delete("/api/v1/registered-models/person-detection/")
    assert response.status_code == 409
    assert "force=true" in response.json()["error"]["message"]
    assert RegisteredModel.objects.exists() and len(bucket_keys(bucket)) == 1


def test_forced_delete_removes_versions_artifacts_and_files(
    api_client, upload, bucket, django_capture_on_commit_callbacks
):
    upload(b"a", version="1")
    upload(b"b", version="2")
    assert len(bucket_keys(bucket)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.delete("/api/v1/registered-models/person-detection/?force=true")
    assert response.status_code == 204
    assert not RegisteredModel.objects.exists() and not ModelVersion.objects.exists()
    assert not Artifact.objects.exists()
    assert bucket_keys(bucket) == []


def test_an_empty_model_is_deleted_without_force(api_client, registered_model):
    assert api_client.delete("/api/v1/registered-models/person-detection/").status_code == 204
    assert not RegisteredModel.objects.exists()


def test_the_list_is_filtered_searched_and_query_count_is_constant(api_client, upload, django_assert_num_queries):
    upload(b"a", registered_model="alpha", tags='{"team": "vision"}')
    api_client.post(
        "/api/v1/registered-models/",
        {"name": "beta", "description": "speech model", "tags": {"team": "audio"}},
        format="json",
    )
    assert [m["name"] for m in api_client.get("/api/v1/registered-models/?search=speech").json()["results"]] == ["beta"]
    assert [m["name"] for m in api_client.get("/api/v1/registered-models/?tag=team:audio").json()["results"]] == [
        "beta"
    ]
    for i in range(10):
        RegisteredModel.objects.create(name=f"extra-{i}")
    # 1 page with version counts annotated (it holds every row, so it is the count)
    with django_assert_num_queries(1):
        body = api_client.get("/api/v1/registered-models/").json()
    assert body["count"] == 12
