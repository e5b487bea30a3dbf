"""A refused upload leaves nothing in the bucket, on every upload route: the multipart form, the
raw body (PUT and POST), Intel's POST /models, and direct uploads. Each refusal is JSON."""

import io

import pytest

from models_app.models import Artifact, ModelVersion, RegisteredModel, UploadSession
from tests.conftest import bucket_keys, free_port, grant, open_multipart_uploads, s3_storages, zip_bytes

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


# Intel's POST /models: every refusal, with the file part before and after the other fields (a file
# sent first is already in the bucket when the fields are checked).

INTEL_FIELDS = {"name": "person-detection", "version": "1", "precision": "fp16"}


def intel_zip(content_type="application/zip", filename="m.zip"):
    """A zip file part; its name is sent as given (".." included)."""
    part = io.BytesIO(zip_bytes([("model.xml", b"<net/>" * 100)]))
    part.name, part.content_type = filename, content_type
    return part


def intel_post(client, fields, *, file=None, file_first=False):
    """POST /models as a multipart form, the file part first or last. ``file`` holds the keyword
    arguments of ``intel_zip``, or False for no file part."""
    fields = {key: value for key, value in {**INTEL_FIELDS, **fields}.items() if value is not None}
    file_part = {} if file is False else {"file": intel_zip(**(file or {}))}
    data = {**file_part, **fields} if file_first else {**fields, **file_part}
    return client.post("/models", data, format="multipart")


def assert_refused(response, status, codes):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]["code"] in codes, response.json()


def assert_no_rows_and_nothing_stored(bucket):
    assert_nothing_stored(bucket)
    assert not RegisteredModel.objects.exists() and not ModelVersion.objects.exists()


INTEL_REFUSALS = {
    "no name": ({"name": None}, None, 422, {"validation_error"}),
    "no version": ({"version": None}, None, 422, {"validation_error"}),
    "no file": ({}, False, 422, {"validation_error"}),
    "an unsupported key": ({"accuracy": "0.9"}, None, 422, {"unsupported_keys"}),
    "a file not declared a zip": ({}, {"content_type": "application/octet-stream"}, 422, {"unsupported_file_type"}),
    "an unsupported precision": ({"precision": "fp64"}, None, 400, {"invalid_precision"}),
    "an id that cannot be reached": ({"id": "has/slash/0123456789"}, None, 400, {"invalid_id"}),
    "a score that is not a number": ({"score": "high"}, None, 422, {"validation_error"}),
    "labels that are not a list": ({"labels": "person, car"}, None, 422, {"validation_error"}),
    "an overview that is not an object": ({"overview": "[1]"}, None, 422, {"validation_error"}),
    "a name with a slash": ({"name": "a/b"}, None, 400, {"validation_error"}),
    "a name too long": ({"name": "n" * 201}, None, 400, {"validation_error"}),
    "a version with a control character": ({"version": "1\x01"}, None, 400, {"validation_error"}),
    # Django's parser drops a file part whose name is not a file name: the file is missing.
    "a file name that is not a file name": ({}, {"filename": ".."}, 422, {"validation_error"}),
}


@pytest.mark.parametrize("file_first", [False, True], ids=["file-last", "file-first"])
@pytest.mark.parametrize("fields, file, status, codes", INTEL_REFUSALS.values(), ids=INTEL_REFUSALS.keys())
def test_an_intel_upload_refused_for_its_fields_stores_nothing(
    api_client, bucket, fields, file, status, codes, file_first
):
    response = intel_post(api_client, fields, file=file, file_first=file_first)
    assert_refused(response, status, codes)
    assert_no_rows_and_nothing_stored(bucket)


@pytest.mark.parametrize("file_first", [False, True], ids=["file-last", "file-first"])
@pytest.mark.parametrize(
    "fields",
    [
        {},  # the same variant
        {"precision": "int8", "id": "taken-id-0123456789"},  # a client-chosen id that is taken
        {"precision": "int8", "project_name": "Aisle"},  # shared fields that differ from its sibling's
    ],
    ids=["same variant", "taken id", "other shared fields"],
)
def test_an_intel_upload_refused_as_a_duplicate_stores_nothing_more(api_client, bucket, fields, file_first):
    first = intel_post(api_client, {"id": "taken-id-0123456789", "project_name": "Shelf"})
    assert first.status_code == 201, first.content
    keys = bucket_keys(bucket)
    response = intel_post(api_client, {"project_name": "Shelf", **fields}, file_first=file_first)
    assert_refused(response, 409, {"conflict"})
    assert bucket_keys(bucket) == keys and open_multipart_uploads(bucket) == []
    assert (RegisteredModel.objects.count(), ModelVersion.objects.count(), Artifact.objects.count()) == (1, 1, 1)


def test_an_intel_upload_with_a_second_file_part_stores_neither_file(api_client, bucket):
    data = {"file": intel_zip(), "weights": intel_zip(filename="weights.bin"), **INTEL_FIELDS}
    response = api_client.post("/models", data, format="multipart")
    assert_refused(response, 422, {"unsupported_keys"})
    assert response.json()["error"]["message"] == "Unsupported key(s) found: weights"
    assert_no_rows_and_nothing_stored(bucket)


def test_an_anonymous_intel_upload_stores_nothing(anon_client, bucket):
    assert_refused(intel_post(anon_client, {}), 401, {"not_authenticated"})
    assert_no_rows_and_nothing_stored(bucket)


def test_an_intel_upload_without_the_permission_stores_nothing(api_client, user, bucket):
    user.user_permissions.clear()
    grant(user, "view_artifact")
    assert_refused(intel_post(api_client, {}), 403, {"permission_denied"})
    assert_no_rows_and_nothing_stored(bucket)


@pytest.mark.parametrize("file_first", [False, True], ids=["file-last", "file-first"])
def test_an_intel_upload_over_the_size_limit_stores_nothing(api_client, bucket, settings, file_first):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 100
    assert_refused(intel_post(api_client, {}, file_first=file_first), 413, {"file_too_large"})
    assert_no_rows_and_nothing_stored(bucket)


@pytest.mark.parametrize(
    "where", ["unreachable", "missing bucket"], ids=["storage unreachable", "storage refuses the bucket"]
)
def test_an_intel_upload_the_storage_refuses_stores_nothing(api_client, bucket, settings, s3_endpoint, where):
    settings.STORAGES = (
        s3_storages(f"http://127.0.0.1:{free_port()}", "unreachable")
        if where == "unreachable"
        else s3_storages(s3_endpoint, "no-such-bucket")
    )
    assert_refused(intel_post(api_client, {}), 503, {"storage_unavailable"})
    settings.STORAGES = s3_storages(s3_endpoint, bucket.name)
    assert_no_rows_and_nothing_stored(bucket)
