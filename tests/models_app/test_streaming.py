"""Big files through the API: uploads stream into S3 in bounded memory; downloads can redirect."""

import hashlib
import subprocess
import sys
import time
import tracemalloc

import boto3
import pytest
import requests

from models_app import services
from models_app.models import Artifact, RegisteredModel
from models_app.uploads import S3StreamingUploadHandler
from tests.conftest import bucket_keys, free_port, model_file, open_multipart_uploads, s3_storages

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024


def test_a_multi_part_upload_arrives_whole_with_its_sha256(upload, bucket, small_parts):
    content = bytes(range(256)) * (52 * 1024)  # 13 MiB: three parts
    response = upload(content)
    assert response.status_code == 201, response.content
    assert response.json()["sha256"] == hashlib.sha256(content).hexdigest()
    artifact = Artifact.objects.get()
    assert bucket.Object(artifact.file.name).get()["Body"].read() == content
    assert open_multipart_uploads(bucket) == []
    # Each part went with its CRC32, checked by S3, which keeps their checksum of checksums
    # (as boto3's transfer manager does), rather than computing a full-object checksum itself.
    checksum = bucket.meta.client.get_object_attributes(
        Bucket=bucket.name, Key=artifact.file.name, ObjectAttributes=["Checksum"]
    )["Checksum"]
    assert checksum["ChecksumType"] == "COMPOSITE" and "ChecksumCRC32" in checksum, checksum


def test_a_file_crossing_the_limit_mid_stream_leaves_no_object_and_no_open_upload(
    upload, bucket, settings, small_parts
):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 12 * MiB
    # Within the Content-Length margin, so the limit is only found while streaming, after two parts.
    response = upload(b"x" * (12 * MiB + 32 * 1024))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []
    assert not RegisteredModel.objects.exists()


def test_a_duplicate_sent_before_its_file_is_refused(upload, bucket):
    assert upload(b"one").status_code == 201
    response = upload(b"two")  # the fixture sends metadata first, then the file
    assert response.status_code == 409
    assert len(bucket_keys(bucket)) == 1 and Artifact.objects.count() == 1


def test_a_duplicate_whose_metadata_follows_the_file_is_refused_and_its_object_deleted(api_client, upload, bucket):
    assert upload(b"one").status_code == 201
    from django.test.client import encode_multipart

    boundary = "b0undary"
    body = encode_multipart(boundary, {"file": model_file(b"two")}).rsplit(f"--{boundary}--".encode(), 1)[0]
    body += encode_multipart(boundary, {"registered_model": "person-detection", "version": "1"})
    response = api_client.generic(
        "POST", "/api/v1/artifacts/", body, content_type=f"multipart/form-data; boundary={boundary}"
    )
    assert response.status_code == 409, response.content
    assert len(bucket_keys(bucket)) == 1 and Artifact.objects.count() == 1


class DisconnectingBody:
    """A request body whose client goes away after ``cut`` bytes, as a socket read would fail."""

    def __init__(self, body, cut):
        self.body, self.cut, self.position = body, cut, 0

    def read(self, size=-1):
        if self.position >= self.cut:
            raise ConnectionResetError("the client went away")
        end = self.cut if size is None or size < 0 else min(self.cut, self.position + size)
        data, self.position = self.body[self.position : end], end
        return data

    def readline(self, size=-1):
        end = self.body.find(b"\n", self.position, self.cut)
        return self.read(-1 if end < 0 else end + 1 - self.position)


@pytest.mark.parametrize(
    "url, fields, content_type",
    [
        ("/api/v1/artifacts/", {"registered_model": "cut", "version": "1"}, "application/octet-stream"),
        ("/models", {"name": "cut", "version": "1"}, "application/zip"),  # Intel's API
    ],
)
def test_a_client_that_disconnects_mid_file_leaves_no_object_and_no_open_upload(
    api_client, bucket, small_parts, url, fields, content_type
):
    response = post_cut_mid_file(api_client, url, fields, content_type)
    assert response.status_code >= 400
    # Two parts had gone to S3 before the cut: the multipart upload is aborted, not left open.
    assert bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []
    assert not Artifact.objects.exists()


def post_cut_mid_file(client, url, fields, content_type="application/zip", size=12 * MiB):
    """POST a form whose fields come before its file, from a client gone halfway through the file."""
    from django.test.client import encode_multipart

    boundary = "b0undary"
    upload = model_file(b"m" * size, "m.zip")
    upload.content_type = content_type
    body = encode_multipart(boundary, {**fields, "file": upload})
    client.raise_request_exception = False
    return client.generic(
        "POST",
        url,
        content_type=f"multipart/form-data; boundary={boundary}",
        **{"wsgi.input": DisconnectingBody(body, cut=len(body) // 2), "CONTENT_LENGTH": str(len(body))},
    )


@pytest.mark.parametrize(
    "url, fields",
    [
        ("/api/v1/artifacts/", {"registered_model": "dup", "version": "1", "precision": "INT8"}),
        ("/models", {"name": "dup", "version": "1", "precision": "int8"}),  # Intel's API
    ],
)
def test_a_duplicate_is_refused_before_its_file_is_read(api_client, bucket, url, fields):
    """The client below goes away halfway through the file: only a refusal made before the file
    is read answers 409 (reading on would fail)."""
    first = api_client.post(url, {**fields, "file": model_file(b"one", "m.zip")}, format="multipart")
    assert first.status_code == 201, first.content
    response = post_cut_mid_file(api_client, url, fields)
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "conflict"
    assert len(bucket_keys(bucket)) == 1 and open_multipart_uploads(bucket) == []
    assert Artifact.objects.count() == 1


@pytest.mark.parametrize(
    "url, fields",
    [
        ("/api/v1/artifacts/", {"registered_model": "dup", "version": "1"}),
        ("/models", {"name": "dup", "version": "1"}),
    ],
)
def test_a_duplicate_is_refused_before_its_file_is_read_on_local_files_too(api_client, local_storage, url, fields):
    first = api_client.post(url, {**fields, "file": model_file(b"one", "m.zip")}, format="multipart")
    assert first.status_code == 201, first.content
    response = post_cut_mid_file(api_client, url, fields, size=3 * MiB)
    assert response.status_code == 409, response.content
    assert Artifact.objects.count() == 1


def test_intel_answers_its_422_before_its_409_for_a_duplicate_that_is_not_a_zip(api_client, bucket):
    """Intel checks the file type before duplicates; the early duplicate check keeps that order."""
    fields = {"name": "dup", "version": "1"}
    upload = model_file(b"one", "m.zip")
    upload.content_type = "application/zip"
    assert api_client.post("/models", {**fields, "file": upload}, format="multipart").status_code == 201
    untyped = model_file(b"two", "m.zip")
    untyped.content_type = "application/octet-stream"  # curl's default; Intel refused it
    response = api_client.post("/models", {**fields, "file": untyped}, format="multipart")
    assert response.status_code == 422, response.content
    assert response.json()["error"]["message"].startswith("Unsupported file type found")
    assert len(bucket_keys(bucket)) == 1


def test_invalid_metadata_after_streaming_leaves_no_object(upload, bucket):
    response = upload(b"bytes", precision="FP7")
    assert response.status_code == 400
    assert bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []


@pytest.fixture
def s3_in_another_process(settings):
    """An S3 endpoint in its own process, so tracemalloc sees only the registry's allocations
    (the session's moto server runs in this process and keeps every object in memory)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                requests.get(endpoint, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="memory")
        settings.STORAGES = s3_storages(endpoint, "memory")
        yield endpoint
    finally:
        server.terminate()
        server.wait(10)


def test_the_upload_path_memory_does_not_grow_with_the_file(s3_in_another_process, small_parts):
    """Push 96 MiB through the streaming handler and the registration service: the peak of
    Python allocations stays at a few parts, not at the file size."""
    chunk = b"z" * MiB

    def push(total_mib, version):
        handler = S3StreamingUploadHandler()
        handler.handle_raw_input(None, {}, total_mib * MiB, b"b")
        tracemalloc.start()
        try:
            handler.new_file("file", "big.bin", "application/octet-stream", None)
        except Exception:  # StopFutureHandlers: it keeps the file to itself
            pass
        for offset in range(total_mib):
            handler.receive_data_chunk(chunk, offset * MiB)
        stored = handler.file_complete(total_mib * MiB)
        services.register_artifact(
            model_name="mem", version=version, fileobj=stored, size=stored.size, sha256=stored.sha256
        )
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    small, big = push(16, "1"), push(96, "2")
    assert big < 40 * MiB, big
    assert big - small < 8 * MiB, (small, big)
    assert Artifact.objects.get(version__version="2").size == 96 * MiB


def test_redirect_mode_answers_a_presigned_url_that_serves_the_file(api_client, upload, bucket):
    content = b"presigned bytes"
    artifact_id = upload(content, name="weights.bin").json()["id"]

    response = api_client.get(f"/api/v1/artifacts/{artifact_id}/download/?mode=redirect")

    assert response.status_code == 302
    fetched = requests.get(response["Location"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == content
    assert fetched.headers["Content-Disposition"] == 'attachment; filename="weights.bin"'


def test_the_download_mode_setting_is_the_default_and_a_parameter_overrides_it(api_client, upload, settings):
    artifact_id = upload(b"abc").json()["id"]
    settings.REGISTRY_DOWNLOAD_MODE = "redirect"
    assert api_client.get(f"/api/v1/artifacts/{artifact_id}/download/").status_code == 302
    proxied = api_client.get(f"/api/v1/artifacts/{artifact_id}/download/?mode=proxy")
    assert proxied.status_code == 200 and b"".join(proxied.streaming_content) == b"abc"
    assert api_client.get(f"/api/v1/artifacts/{artifact_id}/download/?mode=fast").status_code == 400


def test_redirect_mode_falls_back_to_proxy_on_local_files(api_client, local_storage):
    data = {"registered_model": "local", "version": "1", "file": model_file(b"local bytes")}
    artifact_id = api_client.post("/api/v1/artifacts/", data, format="multipart").json()["id"]
    response = api_client.get(f"/api/v1/artifacts/{artifact_id}/download/?mode=redirect")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"local bytes"


def test_redirects_are_signed_for_the_public_s3_address(api_client, upload, bucket, settings, s3_endpoint):
    settings.S3_PUBLIC_ENDPOINT_URL = s3_endpoint.replace("127.0.0.1", "localhost")
    artifact_id = upload(b"public bytes").json()["id"]
    response = api_client.get(f"/api/v1/artifacts/{artifact_id}/download/?mode=redirect")
    assert response.status_code == 302
    assert response["Location"].startswith(settings.S3_PUBLIC_ENDPOINT_URL + "/")
    fetched = requests.get(response["Location"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == b"public bytes"
