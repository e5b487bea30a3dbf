"""Version status (active, deprecated, archived), lineage and provenance filters."""

import pytest
from rest_framework.test import APIClient

from models_app.models import Artifact, AuditEntry, ModelVersion
from tests.conftest import grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_versions(upload):
    for label in ("1", "2", "3"):
        upload(label.encode(), version=label)
    ModelVersion.objects.filter(version="2").update(status="archived")
    ModelVersion.objects.filter(version="3").update(status="deprecated")
    return {v.version: v for v in ModelVersion.objects.all()}


def labels(response):
    assert response.status_code == 200, response.content
    return sorted(r["version"] for r in response.json()["results"])


def test_archived_versions_drop_out_of_the_default_lists(api_client, three_versions):
    assert labels(api_client.get("/api/v1/versions/")) == ["1", "3"]
    assert labels(api_client.get("/api/v1/artifacts/")) == ["1", "3"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("include_archived=true", ["1", "2", "3"]),
        ("status=archived", ["2"]),
        ("status=deprecated", ["3"]),
        ("status=active", ["1"]),
        ("include_archived=false", ["1", "3"]),
    ],
)
def test_archived_versions_are_listed_when_asked_for(api_client, three_versions, query, expected):
    assert labels(api_client.get(f"/api/v1/versions/?{query}")) == expected
    assert labels(api_client.get(f"/api/v1/artifacts/?{query}")) == expected


def test_an_archived_version_is_still_readable_and_downloadable(api_client, three_versions):
    version = three_versions["2"]
    assert api_client.get(f"/api/v1/versions/{version.id}/").json()["status"] == "archived"
    artifact = version.artifacts.get()
    response = api_client.get(f"/api/v1/artifacts/{artifact.id}/download/")
    assert b"".join(response.streaming_content) == b"2"


def test_archive_and_restore_change_only_the_status(api_client, upload, bucket):
    upload(b"model")
    version = ModelVersion.objects.get()
    response = api_client.post(f"/api/v1/versions/{version.id}/archive/")
    assert response.status_code == 200 and response.json()["status"] == "archived"
    assert Artifact.objects.filter(version=version).exists() and len(list(bucket.objects.all())) == 1
    response = api_client.post(f"/api/v1/versions/{version.id}/restore/")
    assert response.json()["status"] == "active"
    assert [e.changes for e in AuditEntry.objects.filter(action="update").order_by("id")] == [
        {"status": ["active", "archived"]},
        {"status": ["archived", "active"]},
    ]


def test_archiving_needs_the_change_permission(upload, django_user_model):
    upload(b"model")
    version = ModelVersion.objects.get()
    client = APIClient()
    client.force_authenticate(grant(django_user_model.objects.create_user("adder"), "add_modelversion"))
    assert client.post(f"/api/v1/versions/{version.id}/archive/").status_code == 403
    version.refresh_from_db()
    assert version.status == "active"


def test_a_version_an_alias_points_to_cannot_be_archived(api_client, upload):
    upload(b"model")
    version = ModelVersion.objects.get()
    api_client.put("/api/v1/registered-models/person-detection/aliases/staging/", {"version": "1"}, format="json")
    for response in (
        api_client.post(f"/api/v1/versions/{version.id}/archive/"),
        api_client.patch(f"/api/v1/versions/{version.id}/", {"status": "archived"}, format="json"),
    ):
        assert response.status_code == 409
        assert "staging" in response.json()["error"]["message"]
    version.refresh_from_db()
    assert version.status == "active"
    assert not AuditEntry.objects.filter(action="update").exists()


def test_an_archived_version_takes_no_new_artifacts(upload, three_versions):
    response = upload(b"late", version="2", precision="INT8")
    assert response.status_code == 409
    assert "archived" in response.json()["error"]["message"]


def test_an_unknown_status_is_refused(api_client, upload):
    upload(b"model")
    version = ModelVersion.objects.get()
    response = api_client.patch(f"/api/v1/versions/{version.id}/", {"status": "gone"}, format="json")
    assert response.status_code == 400
    assert "status" in response.json()["error"]["fields"]


def test_lineage_is_recorded_and_filterable(api_client, upload):
    fp32 = upload(b"full", precision="FP32").json()
    int8 = upload(b"quantized", precision="INT8", derived_from=fp32["id"]).json()
    assert int8["derived_from"] == fp32["id"]
    base = ModelVersion.objects.get()
    response = api_client.post(
        "/api/v1/versions/",
        {
            "registered_model": "person-detection",
            "version": "2",
            "derived_from": str(base.id),
            "provenance": {
                "dataset": "coco-2017",
                "repository": "https://example.com/detector.git",
                "commit": "4f2a9c1",
            },
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    upload(b"tuned", version="2")
    found = api_client.get(f"/api/v1/artifacts/?derived_from={fp32['id']}").json()["results"]
    assert [a["id"] for a in found] == [int8["id"]]
    assert labels(api_client.get(f"/api/v1/versions/?derived_from={base.id}")) == ["2"]


@pytest.mark.parametrize(
    "query, expected",
    [
        ("provenance=dataset:coco-2017", ["2"]),
        ("provenance=commit", ["2"]),
        ("provenance=dataset:imagenet", []),
    ],
)
def test_it_filters_by_provenance(api_client, upload, query, expected):
    upload(b"1", version="1")
    upload(b"2", version="2", provenance='{"dataset": "coco-2017", "commit": "4f2a9c1"}')
    assert labels(api_client.get(f"/api/v1/versions/?{query}")) == expected
    assert labels(api_client.get(f"/api/v1/artifacts/?{query}")) == expected


def test_it_filters_models_and_versions_by_tag(api_client, upload):
    api_client.post("/api/v1/registered-models/", {"name": "a", "tags": {"team": "cv"}}, format="json")
    api_client.post("/api/v1/registered-models/", {"name": "b", "tags": {"team": "nlp"}}, format="json")
    names = [m["name"] for m in api_client.get("/api/v1/registered-models/?tag=team:cv").json()["results"]]
    assert names == ["a"]
    upload(b"1", registered_model="a", version="1", tags='{"stage": "qa"}')
    upload(b"2", registered_model="a", version="2")
    assert labels(api_client.get("/api/v1/versions/?tag=stage:qa")) == ["1"]
