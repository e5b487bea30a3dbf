"""Direct uploads with CRC32 part checksums: each part URL is signed for the part's CRC32, S3
keeps the part checksums, and the registry still reads the whole object back for its sha256.

Moto does not check a part's bytes against the CRC32 it is sent with (it only echoes the header),
so no test here expects S3 to refuse a part with a wrong checksum; AWS answers 400 BadDigest."""

import base64
import hashlib
import zlib
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
import yaml
from django.core.files.base import ContentFile

from models_app.errors import ArtifactStorageError
from models_app.models import Artifact, ModelVersion, UploadSession
from models_app.storage import multipart, save_file
from tests.conftest import bucket_keys, open_multipart_uploads

from .test_direct_uploads import CONTENT, sigv4_query_signature, start

pytestmark = pytest.mark.django_db


def crc32(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


def chunks(session, content):
    size = session["part_size"]
    return {
        p["part_number"]: content[(p["part_number"] - 1) * size : p["part_number"] * size] for p in session["parts"]
    }


def sign(api_client, session, content):
    body = {
        "parts": [{"part_number": n, "checksum_crc32": crc32(data)} for n, data in chunks(session, content).items()]
    }
    return api_client.post(f"/api/v1/uploads/{session['id']}/part-urls/", body, format="json")


def put_with_checksums(api_client, session, content):
    signed = sign(api_client, session, content).json()["parts"]
    data = chunks(session, content)
    parts = []
    for part in signed:
        checksum = part["checksum_crc32"]
        response = requests.put(
            part["url"], data=data[part["part_number"]], headers={"x-amz-checksum-crc32": checksum}, timeout=30
        )
        assert response.status_code == 200, response.text
        parts.append({"part_number": part["part_number"], "etag": response.headers["ETag"], "checksum_crc32": checksum})
    return parts


def test_a_crc32_upload_declares_the_checksum_and_signs_each_part_url_for_it(api_client, bucket, small_parts):
    response = start(api_client, checksum_algorithm="CRC32")
    assert response.status_code == 201, response.content
    session = response.json()
    assert session["checksum_algorithm"] == "CRC32"
    assert [p["url"] for p in session["parts"]] == [None, None, None]  # no URL before its checksum is known
    uploads = bucket.meta.client.list_multipart_uploads(Bucket=bucket.name)["Uploads"]
    assert [u.get("ChecksumAlgorithm") for u in uploads] == ["CRC32"]

    response = sign(api_client, session, CONTENT)

    assert response.status_code == 200, response.content
    signed = response.json()["parts"]
    for part, (number, data) in zip(signed, chunks(session, CONTENT).items(), strict=True):
        assert (part["part_number"], part["size"], part["checksum_crc32"]) == (number, len(data), crc32(data))
        query = dict(parse_qsl(urlsplit(part["url"]).query))
        assert query["X-Amz-SignedHeaders"] == "content-length;host;x-amz-checksum-crc32"
        # Valid with the part's checksum only: S3 refuses the PUT with any other.
        good = {"x-amz-checksum-crc32": crc32(data)}
        assert sigv4_query_signature(part["url"], len(data), good) == query["X-Amz-Signature"]
        other = {"x-amz-checksum-crc32": crc32(data + b"x")}
        assert sigv4_query_signature(part["url"], len(data), other) != query["X-Amz-Signature"]
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


def test_a_crc32_upload_registers_the_file_after_the_registry_checks_its_sha256(api_client, bucket, small_parts):
    digest = hashlib.sha256(CONTENT).hexdigest()
    session = start(api_client, checksum_algorithm="CRC32").json()
    parts = put_with_checksums(api_client, session, CONTENT)

    response = api_client.post(
        f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts, "sha256": digest}, format="json"
    )

    assert response.status_code == 201, response.content
    assert (response.json()["size"], response.json()["sha256"]) == (len(CONTENT), digest)
    artifact = Artifact.objects.get()
    assert bucket_keys(bucket) == [artifact.file.name] and open_multipart_uploads(bucket) == []
    upload = UploadSession.objects.get()
    assert (upload.state, upload.sha256) == ("completed", digest)
    # S3 kept a checksum of the part checksums: it did not compute one over the whole object.
    head = bucket.meta.client.head_object(Bucket=bucket.name, Key=artifact.file.name, ChecksumMode="ENABLED")
    assert head.get("ChecksumCRC32") and not head.get("ChecksumCRC64NVME")


def test_a_sha256_given_at_complete_that_does_not_match_leaves_nothing(api_client, bucket, small_parts):
    session = start(api_client, checksum_algorithm="CRC32").json()
    parts = put_with_checksums(api_client, session, CONTENT)

    response = api_client.post(
        f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts, "sha256": "0" * 64}, format="json"
    )

    assert response.status_code == 400
    assert "sha256" in response.json()["error"]["fields"]
    assert not Artifact.objects.exists() and not ModelVersion.objects.exists()
    assert bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []
    assert UploadSession.objects.get().state == "failed"


def test_part_urls_of_an_upload_without_part_checksums_are_refused(api_client, bucket, small_parts):
    session = start(api_client).json()

    response = sign(api_client, session, CONTENT)

    assert response.status_code == 400
    assert "parts" in response.json()["error"]["fields"]
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


@pytest.mark.parametrize(
    "part", [{"part_number": 4, "checksum_crc32": "AAAAAA=="}, {"part_number": 1, "checksum_crc32": "not-a-crc"}]
)
def test_part_urls_refuse_a_part_the_upload_does_not_have_or_a_malformed_checksum(
    api_client, bucket, small_parts, part
):
    session = start(api_client, checksum_algorithm="CRC32").json()

    response = api_client.post(f"/api/v1/uploads/{session['id']}/part-urls/", {"parts": [part]}, format="json")

    assert response.status_code == 400
    assert "parts" in response.json()["error"]["fields"]
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


def test_a_finished_upload_signs_no_more_parts(api_client, bucket, small_parts):
    session = start(api_client, checksum_algorithm="CRC32").json()
    api_client.delete(f"/api/v1/uploads/{session['id']}/")

    response = sign(api_client, session, CONTENT)

    assert response.status_code == 409


def test_the_schema_documents_part_urls_and_the_new_fields(api_client):
    schema = yaml.safe_load(api_client.get("/api/schema/").content)
    components = schema["components"]["schemas"]

    def properties(operation, status=None):
        body = operation["responses"][status] if status else operation["requestBody"]
        ref = body["content"]["application/json"]["schema"]["$ref"]
        return components[ref.rsplit("/", 1)[1]]["properties"]

    uploads = schema["paths"]["/api/v1/uploads/"]["post"]
    assert "checksum_algorithm" in properties(uploads) and "checksum_algorithm" in properties(uploads, "201")
    part_urls = schema["paths"]["/api/v1/uploads/{id}/part-urls/"]["post"]
    assert "parts" in properties(part_urls) and "parts" in properties(part_urls, "200")
    complete = schema["paths"]["/api/v1/uploads/{id}/complete/"]["post"]
    assert "sha256" in properties(complete)


def test_the_read_back_hashes_every_chunk_in_order(bucket, monkeypatch):
    # Chunks small enough that the reader runs far ahead of the hash and wraps around many times.
    monkeypatch.setattr(multipart, "READ_BACK_CHUNK", 1000)
    content = bytes(range(256)) * 97 + b"tail"
    name = save_file("artifacts/read-back/model.bin", ContentFile(content))
    size, etag = multipart.stored_object(name)

    assert size == len(content)
    assert multipart.object_sha256(name, etag) == hashlib.sha256(content).hexdigest()


def test_the_read_back_refuses_an_object_replaced_since_it_was_measured(bucket):
    name = save_file("artifacts/read-back/model.bin", ContentFile(b"what arrived"))
    _, etag = multipart.stored_object(name)
    bucket.put_object(Key=bucket_keys(bucket)[0], Body=b"put there since")

    with pytest.raises(ArtifactStorageError, match="Could not verify the upload"):
        multipart.object_sha256(name, etag)
