"""Raw-body uploads: ``curl -T model.xml .../api/v1/artifacts/upload/?registered_model=...``."""

import hashlib

import pytest
import requests

from models_app.models import Artifact, RegisteredModel
from tests.conftest import bucket_keys, open_multipart_uploads

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024
CONTENT = bytes(range(256)) * (44 * 1024)  # 11 MiB: three parts of 5 MiB
URL = "/api/v1/artifacts/upload/{name}?registered_model=yolo&version=3&precision=int8&target_device=npu"


def put(client, content, name="model.xml", url=URL, method="put"):
    return client.generic(method.upper(), url.format(name=name), content, content_type="application/octet-stream")


@pytest.mark.parametrize("method", ["put", "post"])
def test_the_body_is_the_file_and_the_query_string_its_metadata(api_client, bucket, small_parts, method):
    response = put(api_client, CONTENT, method=method)
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["registered_model"], body["version"], body["precision"], body["target_device"]) == (
        "yolo",
        "3",
        "INT8",
        "NPU",
    )
    assert body["size"] == len(CONTENT) and body["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert body["original_filename"] == "model.xml" and response["Location"] == body["download_url"]
    artifact = Artifact.objects.get()
    assert bucket_keys(bucket) == [artifact.file.name]
    assert bucket.Object(artifact.file.name).get()["Body"].read() == CONTENT
    assert open_multipart_uploads(bucket) == []


def test_a_taken_variant_is_refused_before_its_body_is_stored(api_client, bucket):
    assert put(api_client, b"one").status_code == 201
    response = put(api_client, b"two", name="other.xml")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"
    assert len(bucket_keys(bucket)) == 1 and Artifact.objects.count() == 1
    assert open_multipart_uploads(bucket) == []


def test_missing_metadata_is_a_400_that_leaves_nothing(api_client, bucket):
    response = put(api_client, b"bytes", url="/api/v1/artifacts/upload/{name}?precision=int8")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"registered_model", "version"}
    assert bucket_keys(bucket) == [] and not RegisteredModel.objects.exists()


def test_a_body_over_the_limit_is_a_413_that_leaves_nothing(api_client, bucket, settings, small_parts):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 10 * MiB
    response = put(api_client, CONTENT)
    assert response.status_code == 413 and response.json()["error"]["code"] == "file_too_large"
    assert bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []
    assert not Artifact.objects.exists()


def test_anonymous_uploads_are_refused(anon_client, bucket):
    response = put(anon_client, b"bytes")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
    assert bucket_keys(bucket) == [] and not Artifact.objects.exists()


def test_on_local_files_the_body_is_hashed_into_storage(api_client, local_storage):
    response = put(api_client, CONTENT)
    assert response.status_code == 201, response.content
    artifact = Artifact.objects.get()
    assert artifact.sha256 == hashlib.sha256(CONTENT).hexdigest()
    assert (local_storage / artifact.file.name).read_bytes() == CONTENT


def test_a_streamed_http_put_as_curl_sends_it(live_server, user, bucket, small_parts):
    """Over real HTTP, the body streamed from a generator (never one bytes object in the client)."""
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=user)

    def chunks():
        for start in range(0, len(CONTENT), MiB):
            yield CONTENT[start : start + MiB]

    response = requests.put(
        live_server.url + URL.format(name="weights.bin"),
        data=chunks(),
        timeout=60,
        headers={"Authorization": f"Token {token.key}", "Content-Length": str(len(CONTENT))},
    )
    assert response.status_code == 201, response.text
    assert response.json()["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert bucket.Object(Artifact.objects.get().file.name).get()["Body"].read() == CONTENT
