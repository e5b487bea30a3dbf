"""Direct uploads: presigned multipart parts straight to S3, verified before registration."""

import hashlib
import hmac
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
import requests
import yaml
from django.core.management import call_command
from django.utils import timezone

from models_app.models import Artifact, ModelVersion, UploadSession
from tests.conftest import bucket_keys, free_port, open_multipart_uploads, s3_storages

pytestmark = pytest.mark.django_db

MiB = 1024 * 1024
CONTENT = bytes(range(256)) * (48 * 1024) + b"tail"  # 12 MiB + 4 bytes: three 5 MiB-or-more parts


def start(client, content=CONTENT, **fields):
    data = {
        "registered_model": "big-model",
        "version": "1",
        "precision": "INT8",
        "filename": "weights.bin",
        "size": len(content),
        **fields,
    }
    return client.post("/api/v1/uploads/", data, format="json")


def put_parts(session, content):
    """PUT ``content`` part by part to as many part URLs as it fills."""
    parts = []
    for part in session["parts"]:
        start = (part["part_number"] - 1) * session["part_size"]
        if start and start >= len(content):
            break
        response = requests.put(part["url"], data=content[start : start + session["part_size"]], timeout=30)
        assert response.status_code == 200, response.text
        parts.append({"part_number": part["part_number"], "etag": response.headers["ETag"]})
    return parts


def test_a_direct_upload_registers_the_file_with_its_size_and_sha256(api_client, bucket, small_parts):
    digest = hashlib.sha256(CONTENT).hexdigest()
    response = start(api_client, sha256=digest)
    assert response.status_code == 201, response.content
    session = response.json()
    assert session["state"] == "pending" and session["part_size"] == 5 * MiB
    assert [p["part_number"] for p in session["parts"]] == [1, 2, 3]
    parts = put_parts(session, CONTENT)

    response = api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["size"], body["sha256"], body["precision"]) == (len(CONTENT), digest, "INT8")
    artifact = Artifact.objects.get()
    assert artifact.file.name == f"artifacts/{session['id']}/weights.bin"
    assert bucket_keys(bucket) == [artifact.file.name]
    assert UploadSession.objects.get().state == "completed" and UploadSession.objects.get().artifact == artifact
    download = api_client.get(f"/api/v1/artifacts/{artifact.id}/download/")
    assert hashlib.sha256(b"".join(download.streaming_content)).hexdigest() == digest


def test_a_sha256_mismatch_is_refused_and_leaves_nothing(api_client, bucket, small_parts):
    session = start(api_client, sha256="0" * 64).json()
    parts = put_parts(session, CONTENT)

    response = api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")

    assert response.status_code == 400
    assert "sha256" in response.json()["error"]["fields"]
    assert not Artifact.objects.exists() and not ModelVersion.objects.exists()
    assert bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []
    assert UploadSession.objects.get().state == "failed"


def sigv4_query_signature(url, content_length, headers=None):
    """The SigV4 signature S3 expects on a presigned PUT of ``url`` whose body is
    ``content_length`` bytes (the AWS "query string authentication" algorithm, written out so the
    test does not rely on the S3 server checking it)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "X-Amz-Signature"]
    params = dict(query)
    signed = params["X-Amz-SignedHeaders"].split(";")
    headers = {"host": parts.netloc, "content-length": str(content_length), **(headers or {})}
    canonical_query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(query))
    canonical_request = "\n".join(
        [
            "PUT",
            parts.path,
            canonical_query,
            "".join(f"{name}:{headers[name]}\n" for name in signed),
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )
    scope = params["X-Amz-Credential"].split("/", 1)[1]
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", params["X-Amz-Date"], scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = ("AWS4" + os.environ.get("S3_SECRET_ACCESS_KEY", os.environ["AWS_SECRET_ACCESS_KEY"])).encode()
    for piece in scope.split("/"):
        key = hmac.new(key, piece.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def test_each_part_url_signs_the_part_s_length(api_client, bucket, small_parts):
    session = start(api_client).json()

    lengths = [5 * MiB, 5 * MiB, len(CONTENT) - 10 * MiB]
    assert [p["size"] for p in session["parts"]] == lengths
    for part, length in zip(session["parts"], lengths, strict=True):
        query = dict(parse_qsl(urlsplit(part["url"]).query))
        assert query["X-Amz-SignedHeaders"] == "content-length;host"
        # Valid for a body of the part's length only: S3 refuses any other size.
        assert sigv4_query_signature(part["url"], length) == query["X-Amz-Signature"]
        assert sigv4_query_signature(part["url"], length + 1) != query["X-Amz-Signature"]
        assert sigv4_query_signature(part["url"], length - 1) != query["X-Amz-Signature"]
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


def test_a_file_smaller_than_a_part_gets_one_url_signed_for_its_size(api_client, bucket):
    session = start(api_client, content=b"x").json()
    assert [(p["part_number"], p["size"]) for p in session["parts"]] == [(1, 1)]
    query = dict(parse_qsl(urlsplit(session["parts"][0]["url"]).query))
    assert sigv4_query_signature(session["parts"][0]["url"], 1) == query["X-Amz-Signature"]
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


@pytest.mark.parametrize("extra", [b"more", b""], ids=["a longer part", "a shorter upload"])
def test_a_part_of_another_size_than_signed_is_refused_and_leaves_nothing(api_client, bucket, small_parts, extra):
    """S3 checks the signed Content-Length and refuses the part with a 403. Moto does not check
    presigned signatures at all, so there the part is taken and ``complete`` refuses the size."""
    if extra:
        session = start(api_client).json()
        content = CONTENT + extra  # the last part carries 4 bytes more than signed
    else:
        session = start(api_client, content=CONTENT + b"more").json()  # announces 4 bytes it never sends
        content = CONTENT
    parts = put_parts(session, content[: 10 * MiB])
    last = requests.put(session["parts"][2]["url"], data=content[10 * MiB :], timeout=30)

    if last.status_code == 403:
        assert "SignatureDoesNotMatch" in last.text
        api_client.delete(f"/api/v1/uploads/{session['id']}/")
    else:
        assert last.status_code == 200, last.text
        parts.append({"part_number": 3, "etag": last.headers["ETag"]})
        response = api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")
        assert response.status_code == 400
        assert "size" in response.json()["error"]["fields"]
    assert not Artifact.objects.exists() and bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []


def test_a_taken_variant_is_refused_before_any_byte_is_sent(api_client, upload, bucket):
    upload(b"first", registered_model="big-model", version="1", precision="INT8")
    response = start(api_client)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
    assert not UploadSession.objects.exists() and open_multipart_uploads(bucket) == []


def test_invalid_metadata_is_refused_at_initiation(api_client, bucket):
    response = start(api_client, precision="FP7")
    assert response.status_code == 400
    assert "precision" in response.json()["error"]["fields"]
    assert open_multipart_uploads(bucket) == []


def test_a_file_over_the_limit_is_refused_at_initiation(api_client, bucket, settings):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 1000
    response = start(api_client)
    assert response.status_code == 413
    assert open_multipart_uploads(bucket) == []


def test_abort_drops_the_parts_and_the_session(api_client, bucket, small_parts):
    session = start(api_client).json()
    put_parts(session, CONTENT)
    assert len(open_multipart_uploads(bucket)) == 1

    response = api_client.delete(f"/api/v1/uploads/{session['id']}/")

    assert response.status_code == 204
    assert open_multipart_uploads(bucket) == [] and bucket_keys(bucket) == []
    assert UploadSession.objects.get().state == "aborted"
    again = api_client.post(
        f"/api/v1/uploads/{session['id']}/complete/", {"parts": [{"part_number": 1, "etag": "x"}]}, format="json"
    )
    assert again.status_code == 409


def test_an_abort_storage_cannot_take_leaves_the_upload_pending_to_retry(api_client, bucket, small_parts, settings):
    session = start(api_client).json()
    put_parts(session, CONTENT)
    reachable = settings.STORAGES
    settings.STORAGES = s3_storages(f"http://127.0.0.1:{free_port()}", bucket.name)

    response = api_client.delete(f"/api/v1/uploads/{session['id']}/")

    assert response.status_code == 503 and response.json()["error"]["code"] == "storage_unavailable"
    assert UploadSession.objects.get().state == "pending" and len(open_multipart_uploads(bucket)) == 1
    settings.STORAGES = reachable
    assert api_client.delete(f"/api/v1/uploads/{session['id']}/").status_code == 204
    assert UploadSession.objects.get().state == "aborted" and open_multipart_uploads(bucket) == []


def test_prune_uploads_aborts_expired_sessions_and_stray_multipart_uploads(api_client, bucket, small_parts):
    session = start(api_client).json()
    put_parts(session, CONTENT)
    UploadSession.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    stray = bucket.meta.client.create_multipart_upload(Bucket=bucket.name, Key="artifacts/x/stray.bin")
    assert len(open_multipart_uploads(bucket)) == 2

    call_command("prune_uploads", "--older-than-hours", "0")

    assert open_multipart_uploads(bucket) == []
    assert UploadSession.objects.get().state == "aborted"
    assert stray["UploadId"]


def test_prune_uploads_fails_a_session_left_completing_past_the_bound(api_client, bucket, small_parts, settings):
    """A process that died mid-complete leaves its session completing: once that has lasted
    longer than REGISTRY_UPLOAD_COMPLETING_MINUTES, prune fails it and drops its parts."""
    settings.REGISTRY_UPLOAD_COMPLETING_MINUTES = 60
    stuck, recent = start(api_client).json(), start(api_client, version="2").json()
    put_parts(stuck, CONTENT)
    put_parts(recent, CONTENT)
    now = timezone.now()
    UploadSession.objects.filter(pk=stuck["id"]).update(state="completing", moved_at=now - timedelta(minutes=61))
    UploadSession.objects.filter(pk=recent["id"]).update(state="completing", moved_at=now - timedelta(minutes=59))

    call_command("prune_uploads")

    failed = UploadSession.objects.get(pk=stuck["id"])
    assert failed.state == "failed" and "completing" in failed.error
    left = UploadSession.objects.get(pk=recent["id"])
    assert left.state == "completing"
    assert [u["UploadId"] for u in open_multipart_uploads(bucket)] == [left.upload_id]
    assert not Artifact.objects.exists()


def test_a_stalled_completion_s3_had_finished_leaves_an_orphan_prune_artifacts_removes(
    api_client, bucket, small_parts, settings
):
    """The process died after S3 assembled the file but before the artifact row: prune_uploads
    fails the session, and the object, which no artifact owns, goes with prune_artifacts."""
    session = start(api_client).json()
    parts = put_parts(session, CONTENT)
    stalled = UploadSession.objects.get()
    bucket.meta.client.complete_multipart_upload(
        Bucket=bucket.name,
        Key=stalled.key,
        UploadId=stalled.upload_id,
        MultipartUpload={"Parts": [{"PartNumber": p["part_number"], "ETag": p["etag"]} for p in parts]},
    )
    UploadSession.objects.update(state="completing", moved_at=timezone.now() - timedelta(days=1))

    call_command("prune_uploads")

    assert UploadSession.objects.get().state == "failed" and open_multipart_uploads(bucket) == []
    assert bucket_keys(bucket) == [stalled.key]
    call_command("prune_artifacts", "--older-than-hours", "0")
    assert bucket_keys(bucket) == []


def test_uploads_are_private_to_their_creator(api_client, bucket, django_user_model, small_parts):
    from rest_framework.test import APIClient

    from tests.conftest import ALL_MODEL_PERMS, grant

    session = start(api_client).json()
    other = APIClient()
    other.force_authenticate(grant(django_user_model.objects.create_user("bob"), *ALL_MODEL_PERMS))
    assert other.get(f"/api/v1/uploads/{session['id']}/").status_code == 404
    assert other.delete(f"/api/v1/uploads/{session['id']}/").status_code == 404
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


def test_direct_uploads_need_the_add_permission(anon_client, bucket):
    assert start(anon_client).status_code == 401


def test_direct_uploads_answer_501_on_local_files(api_client, local_storage):
    response = start(api_client)
    assert response.status_code == 501
    assert response.json()["error"]["code"] == "direct_upload_unavailable"
    assert not UploadSession.objects.exists()


def test_part_urls_are_signed_for_the_public_s3_address(api_client, bucket, small_parts, settings, s3_endpoint):
    """Inside Docker Compose the registry reaches MinIO as http://minio:9000 while browsers use
    http://localhost:9000; here the same moto server is reached under a second name."""
    settings.S3_PUBLIC_ENDPOINT_URL = s3_endpoint.replace("127.0.0.1", "localhost")
    session = start(api_client).json()
    assert all(p["url"].startswith(settings.S3_PUBLIC_ENDPOINT_URL + "/") for p in session["parts"])
    parts = put_parts(session, CONTENT)
    response = api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")
    assert response.status_code == 201, response.content
    assert Artifact.objects.get().sha256 == hashlib.sha256(CONTENT).hexdigest()


def test_the_schema_documents_the_part_urls_with_their_signed_sizes(api_client, bucket, small_parts):
    schema = yaml.safe_load(api_client.get("/api/schema/").content)
    started = schema["paths"]["/api/v1/uploads/"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][started["$ref"].rsplit("/", 1)[1]]
    part = schema["components"]["schemas"][component["properties"]["parts"]["items"]["$ref"].rsplit("/", 1)[1]]
    session = start(api_client).json()
    assert set(component["properties"]) == set(session)
    assert set(part["properties"]) == set(session["parts"][0]) == {"part_number", "size", "url"}
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


# --- the parts S3 has received ----------------------------------------------------------------


def test_parts_lists_what_storage_received_with_sizes_and_etags(api_client, bucket, small_parts):
    session = start(api_client).json()
    sent = put_parts({**session, "parts": session["parts"][::2]}, CONTENT)  # parts 1 and 3

    response = api_client.get(f"/api/v1/uploads/{session['id']}/parts/")

    assert response.status_code == 200, response.content
    assert response.json() == {
        "parts": [
            {"part_number": 1, "size": 5 * MiB, "etag": sent[0]["etag"], "checksum_crc32": None},
            {"part_number": 3, "size": len(CONTENT) - 10 * MiB, "etag": sent[1]["etag"], "checksum_crc32": None},
        ]
    }
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


def test_parts_follows_storage_beyond_its_pages_of_1000(api_client, bucket, small_parts):
    session = start(api_client).json()
    upload = UploadSession.objects.get()
    s3 = bucket.meta.client

    def send(number):  # parts other than the last may be tiny until the upload completes
        return s3.upload_part(
            Bucket=bucket.name, Key=upload.key, UploadId=upload.upload_id, PartNumber=number, Body=b"x"
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(1, 1006)))

    response = api_client.get(f"/api/v1/uploads/{session['id']}/parts/")

    assert response.status_code == 200
    parts = response.json()["parts"]
    assert [p["part_number"] for p in parts] == list(range(1, 1006))
    assert {p["size"] for p in parts} == {1}
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


def test_parts_of_a_finished_upload_is_a_conflict(api_client, bucket, small_parts):
    session = start(api_client).json()
    parts = put_parts(session, CONTENT)
    api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")
    other = start(api_client, version="2").json()
    api_client.delete(f"/api/v1/uploads/{other['id']}/")

    for finished in (session, other):
        response = api_client.get(f"/api/v1/uploads/{finished['id']}/parts/")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "conflict"
    assert [s.state for s in UploadSession.objects.order_by("created_at")] == ["completed", "aborted"]


def test_parts_of_an_upload_storage_no_longer_has_is_a_conflict(api_client, bucket, small_parts):
    session = start(api_client).json()
    upload = UploadSession.objects.get()
    bucket.meta.client.abort_multipart_upload(Bucket=bucket.name, Key=upload.key, UploadId=upload.upload_id)

    response = api_client.get(f"/api/v1/uploads/{session['id']}/parts/")

    assert response.status_code == 409
    assert "no longer" in response.json()["error"]["message"]
    assert UploadSession.objects.get().state == "pending"


def test_parts_of_an_unknown_or_another_users_upload_is_not_found(api_client, bucket, django_user_model, small_parts):
    from rest_framework.test import APIClient

    from tests.conftest import ALL_MODEL_PERMS, grant

    session = start(api_client).json()
    other = APIClient()
    other.force_authenticate(grant(django_user_model.objects.create_user("bob"), *ALL_MODEL_PERMS))

    for client, path in [
        (other, f"/api/v1/uploads/{session['id']}/parts/"),
        (api_client, "/api/v1/uploads/00000000-0000-0000-0000-000000000000/parts/"),
        (api_client, "/api/v1/uploads/not-a-uuid/parts/"),
    ]:
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    api_client.delete(f"/api/v1/uploads/{session['id']}/")


def test_parts_needs_the_add_permission(anon_client, bucket):
    response = anon_client.get("/api/v1/uploads/00000000-0000-0000-0000-000000000000/parts/")
    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
