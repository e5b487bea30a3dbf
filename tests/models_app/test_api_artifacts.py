import hashlib

import pytest

from models_app.models import Artifact, ModelVersion, RegisteredModel
from tests.conftest import bucket_keys, count_queries, free_port, s3_storages

pytestmark = pytest.mark.django_db

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, every byte value


def download(client, artifact_id, **headers):
    response = client.get(f"/api/v1/artifacts/{artifact_id}/download/", **headers)
    return response, b"".join(response.streaming_content) if response.status_code in (200, 206) else b""


def test_it_registers_a_file_and_creates_model_and_version(upload, bucket):
    response = upload(
        PAYLOAD,
        labels='["person", "car"]',
        overview='{"a": true, "b": null}',
        score="0.91",
        category="Detection",
        architecture="YOLOX",
        precision="fp16",
        target_device="npu",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["registered_model"] == "person-detection" and body["version"] == "1"
    assert (body["precision"], body["target_device"], body["score"]) == ("FP16", "NPU", 0.91)
    assert body["size"] == len(PAYLOAD)
    assert body["sha256"] == hashlib.sha256(PAYLOAD).hexdigest()
    version = ModelVersion.objects.get()
    assert version.labels == ["person", "car"] and version.overview == {"a": True, "b": None}
    artifact = Artifact.objects.get()
    assert bucket_keys(bucket) == [artifact.file.name]
    assert artifact.file.name == f"artifacts/{artifact.id}/model.zip"


def test_it_downloads_the_exact_bytes_with_checksum_headers(api_client, upload):
    artifact_id = upload(PAYLOAD, name="weights.bin").json()["id"]
    response, content = download(api_client, artifact_id)
    assert response.status_code == 200
    assert content == PAYLOAD
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    assert response["ETag"] == f'"{digest}"'
    assert response["X-Checksum-SHA256"] == digest
    assert response["Content-Length"] == str(len(PAYLOAD))
    assert response["Content-Disposition"] == 'attachment; filename="weights.bin"'
    assert response["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    "header, start, end",
    [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-", 1000, len(PAYLOAD) - 1),
        ("bytes=-16", len(PAYLOAD) - 16, len(PAYLOAD) - 1),
        ("bytes=100-999999999", 100, len(PAYLOAD) - 1),
    ],
)
def test_it_serves_byte_ranges(api_client, upload, header, start, end):
    artifact_id = upload(PAYLOAD).json()["id"]
    response, content = download(api_client, artifact_id, HTTP_RANGE=header)
    assert response.status_code == 206
    assert content == PAYLOAD[start : end + 1]
    assert response["Content-Range"] == f"bytes {start}-{end}/{len(PAYLOAD)}"
    assert response["Content-Length"] == str(end - start + 1)


def test_it_refuses_a_range_past_the_end(api_client, upload):
    artifact_id = upload(b"0123456789").json()["id"]
    response, _ = download(api_client, artifact_id, HTTP_RANGE="bytes=10-20")
    assert response.status_code == 416
    assert response.json()["error"]["code"] == "range_not_satisfiable"


def test_it_answers_not_modified_for_a_matching_etag(api_client, upload):
    body = upload(b"abc").json()
    response = api_client.get(f"/api/v1/artifacts/{body['id']}/download/", HTTP_IF_NONE_MATCH=f'"{body["sha256"]}"')
    assert response.status_code == 304


def test_it_rejects_a_duplicate_variant_with_409_and_leaves_no_object(upload, bucket):
    assert upload(b"first").status_code == 201
    response = upload(b"second", precision="fp32", target_device="cpu")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert Artifact.objects.count() == 1
    assert len(bucket_keys(bucket)) == 1


def test_it_allows_other_precisions_in_the_same_version(upload):
    assert upload(b"a", precision="FP32").status_code == 201
    assert upload(b"b", precision="INT8").status_code == 201
    assert ModelVersion.objects.get().artifacts.count() == 2


def test_it_explains_invalid_metadata_field_by_field(upload, bucket):
    response = upload(b"a", precision="fp17", labels="not json", overview="[1, 2]")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert set(error["fields"]) >= {"labels"}
    assert not Artifact.objects.exists() and not RegisteredModel.objects.exists()
    assert bucket_keys(bucket) == []


def test_it_rejects_an_unknown_precision(upload):
    response = upload(b"a", precision="fp17")
    assert response.status_code == 400
    assert "FP17 is not a supported precision" in response.json()["error"]["fields"]["precision"][0]


def test_it_rejects_a_non_object_overview(upload):
    response = upload(b"a", overview="[1, 2]")
    assert response.status_code == 400
    assert "overview" in response.json()["error"]["fields"]


def test_it_requires_a_file(api_client, bucket):
    response = api_client.post("/api/v1/artifacts/", {"registered_model": "m", "version": "1"}, format="multipart")
    assert response.status_code == 400
    assert "file" in response.json()["error"]["fields"]


def test_it_refuses_a_file_over_the_limit_with_413(upload, bucket, settings):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 1000
    response = upload(b"x" * 5000)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert not Artifact.objects.exists() and not RegisteredModel.objects.exists()
    assert bucket_keys(bucket) == []


def test_it_never_uses_the_client_file_name_as_a_path(upload, bucket):
    response = upload(b"evil", name="../../etc/passwd")
    assert response.status_code == 201
    artifact = Artifact.objects.get()
    assert artifact.file.name == f"artifacts/{artifact.id}/passwd"
    assert bucket_keys(bucket) == [artifact.file.name]


def test_it_answers_503_and_keeps_nothing_when_storage_is_down(upload, settings, bucket):
    settings.STORAGES = s3_storages(f"http://127.0.0.1:{free_port()}", "registry-test")
    response = upload(b"lost?")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "storage_unavailable"
    assert not Artifact.objects.exists() and not ModelVersion.objects.exists()
    assert not RegisteredModel.objects.exists()


def test_it_refuses_anonymous_writes(upload, anon_client):
    response = upload(b"a", client=anon_client)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert not Artifact.objects.exists()


def test_it_accepts_a_token_write(upload, user):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    response = upload(b"a", client=client)
    assert response.status_code == 201
    assert Artifact.objects.get().created_by == user


def test_it_refuses_a_user_without_the_add_permission(upload, django_user_model):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(django_user_model.objects.create_user("bob"))
    response = upload(b"a", client=client)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"


def test_reads_need_login_when_the_setting_says_so(artifact, anon_client, settings):
    settings.REGISTRY_REQUIRE_LOGIN = True
    assert anon_client.get("/api/v1/artifacts/").status_code == 401
    settings.REGISTRY_REQUIRE_LOGIN = False
    assert anon_client.get("/api/v1/artifacts/").status_code == 200


def test_it_updates_metadata_but_not_the_file(api_client, artifact):
    response = api_client.patch(
        f"/api/v1/artifacts/{artifact.id}/", {"score": 0.5, "precision": "int8", "size": 1}, format="json"
    )
    assert response.status_code == 200, response.content
    artifact.refresh_from_db()
    assert (artifact.score, artifact.precision, artifact.size) == (0.5, "INT8", 1000)


def test_an_update_into_an_existing_variant_is_a_conflict(api_client, upload):
    upload(b"a", precision="FP32")
    second = upload(b"b", precision="INT8").json()
    response = api_client.patch(f"/api/v1/artifacts/{second['id']}/", {"precision": "FP32"}, format="json")
    assert response.status_code == 409
    assert Artifact.objects.get(pk=second["id"]).precision == "INT8"


def test_delete_removes_the_row_and_the_object(api_client, artifact, bucket, django_capture_on_commit_callbacks):
    assert bucket_keys(bucket) == [artifact.file.name]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.delete(f"/api/v1/artifacts/{artifact.id}/")
    assert response.status_code == 204
    assert not Artifact.objects.exists()
    assert bucket_keys(bucket) == []


def test_unknown_artifact_is_a_json_404(api_client):
    response = api_client.get("/api/v1/artifacts/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "query, expected",
    [
        ("precision=int8", {"a-INT8"}),
        ("target_device=gpu", {"b-FP16"}),
        ("format=onnx", {"b-FP16"}),
        ("registered_model=model-a", {"a-FP32", "a-INT8"}),
        ("category=classification", {"b-FP16"}),
        ("architecture=yolo", {"a-FP32", "a-INT8"}),
        ("label=cat", {"b-FP16"}),
        ("origin=geti", {"b-FP16"}),
        ("project_name=retail", {"b-FP16"}),
        ("score_min=0.8", {"a-INT8", "b-FP16"}),
        ("size_max=2", {"a-FP32", "a-INT8"}),
        ("tag=team:vision", {"a-FP32", "a-INT8"}),
        ("tag=stage", {"b-FP16"}),
        ("search=retail", {"b-FP16"}),
        ("version=2", {"b-FP16"}),
    ],
)
def test_it_filters_artifacts_by_metadata(api_client, upload, query, expected):
    upload(
        b"1", registered_model="model-a", precision="FP32", architecture="YOLOX", score="0.7", tags='{"team": "vision"}'
    )
    upload(b"2", registered_model="model-a", precision="INT8", score="0.85")
    upload(
        b"333",
        registered_model="model-b",
        version="2",
        precision="FP16",
        target_device="GPU",
        format="onnx",
        category="Classification",
        labels='["cat"]',
        origin="Geti",
        project_name="Retail shelf",
        score="0.9",
        tags='{"stage": "qa"}',
    )
    response = api_client.get(f"/api/v1/artifacts/?{query}")
    assert response.status_code == 200
    found = {f"{r['registered_model'][-1]}-{r['precision']}" for r in response.json()["results"]}
    assert found == expected


def test_it_orders_and_paginates(api_client, upload):
    for i, score in enumerate([0.3, 0.9, 0.6]):
        upload(str(i).encode(), version=str(i), score=str(score))
    response = api_client.get("/api/v1/artifacts/?ordering=-score&page_size=2")
    body = response.json()
    assert body["count"] == 3
    assert [r["score"] for r in body["results"]] == [0.9, 0.6]
    assert body["next"] is not None
    assert [r["score"] for r in api_client.get(body["next"]).json()["results"]] == [0.3]


def test_the_list_query_count_does_not_grow(api_client, upload, django_assert_num_queries):
    upload(b"1", version="1")
    few = count_queries(api_client, "/api/v1/artifacts/")
    for i in range(2, 12):
        upload(str(i).encode(), version=str(i), registered_model=f"m{i}")
    # 1 count + the page's ids + its rows with version, registered model and creator joined
    # the first page's rows, joined to version, registered model and creator (every row: no count)
    with django_assert_num_queries(1):
        api_client.get("/api/v1/artifacts/")
    assert count_queries(api_client, "/api/v1/artifacts/") == few


def test_a_tag_key_is_matched_as_text_never_as_a_lookup(api_client, upload):
    upload(b"1", tags='{"team": "vision"}')
    for query in ["tag=team__contains:vis", "tag=team__isnull:false"]:
        response = api_client.get(f"/api/v1/artifacts/?{query}")
        assert response.status_code == 200, query
        assert response.json()["count"] == 0, query
    assert api_client.get("/api/v1/artifacts/?tag=team:vision").json()["count"] == 1
