"""A refused upload leaves nothing in the bucket, on every upload route: the multipart form, the
raw body (PUT and POST), Intel's POST /models, and direct uploads. Each refusal is JSON."""

import pytest

from models_app.models import Artifact, RegisteredModel, UploadSession
from tests.conftest import bucket_keys, open_multipart_uploads

pytestmark = pytest.mark.django_db
RAW = "/api/v1/artifacts/upload/{name}?registered_model=m&version=1&precision=int8"


def assert_nothing_stored(bucket):
    assert bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []
    assert not Artifact.objects.exists()


@pytest.mark.parametrize("name", [".", "..", "%2e%2e", "%2E"])
@pytest.mark.parametrize("method", ["PUT", "POST"])
def test_a_raw_upload_whose_name_is_not_a_file_name_is_a_json_400_that_stores_nothing(api_client, bucket, name, method):
    response = api_client.generic(
        method, RAW.format(name=name), b"model bytes", content_type="application/octet-stream"
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] in {"parse_error", "validation_error", "bad_request"}
    assert_nothing_stored(bucket)


@pytest.mark.parametrize("filename", ["..", "."])
def test_a_multipart_upload_whose_file_name_is_not_a_file_name_stores_nothing(api_client, bucket, filename):
    boundary = "b0undary"
    fields = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in (("registered_model", "m"), ("version", "1"))
    )
    body = (
        f'{fields}--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\nmodel bytes\r\n--{boundary}--\r\n"
    ).encode()
    response = api_client.generic(
        "POST", "/api/v1/artifacts/", body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 400, response.content
    assert_nothing_stored(bucket)


@pytest.mark.parametrize(
    "query", ["precision=FP7", "registered_model=&version=1", "registered_model=m&version=1&labels=notjson"]
)
def test_a_raw_upload_with_bad_metadata_stores_nothing(api_client, bucket, query):
    response = api_client.generic(
        "PUT", f"/api/v1/artifacts/upload/m.bin?{query}", b"model bytes", content_type="application/octet-stream"
    )
    assert response.status_code == 400, response.content
    assert_nothing_stored(bucket)


def test_a_direct_upload_refused_at_the_start_stores_nothing(api_client, bucket):
    response = api_client.post(
        "/api/v1/uploads/", {"registered_model": "m", "version": "1", "filename": "..", "size": 10}, format="json"
    )
    assert response.status_code == 400, response.content
    assert not UploadSession.objects.exists() and not RegisteredModel.objects.exists()
    assert_nothing_stored(bucket)
