"""Pushing over the OCI distribution API: the oras Python SDK against a live server, and raw
requests for what the SDK does not send (wrong digests, broken chunks, abandoned uploads)."""

import io
import json
from datetime import timedelta

import oras.client
import pytest
import requests
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from models_app import blob_uploads, services
from models_app.models import Artifact, BlobUpload
from tests.conftest import bucket_keys, on_a_connection_of_its_own, open_multipart_uploads, right_after

from .oci_helpers import INDEX, MANIFEST, Registry, oci_errors, register, sha256

pytestmark = pytest.mark.django_db(transaction=True)

REPO = "models/person-detection"
MiB = 1024 * 1024
ANNOTATIONS = {
    "org.model-registry.precision": "INT8",
    "org.model-registry.target-device": "NPU",
    "org.model-registry.format": "openvino",
    "org.model-registry.score": "0.87",
    "org.model-registry.labels": '["person","bicycle"]',
}


@pytest.fixture
def token(user):
    return Token.objects.create(user=user).key


@pytest.fixture
def registry(live_server, bucket, token):
    with Registry(live_server.url) as session:
        session.auth = ("alice", token)
        yield session


@pytest.fixture
def oras_client(registry, token):
    client = oras.client.OrasClient(hostname=registry.host, insecure=True)
    client.auth.set_basic_auth("alice", token)
    return client


def push(client, registry, path, tag, annotations=ANNOTATIONS, **options):
    return client.push(
        target=f"{registry.host}/{REPO}:{tag}",
        files=[str(path)],
        manifest_annotations=annotations,
        disable_path_validation=True,
        quiet=True,
        **options,
    )


def test_an_oras_push_registers_a_variant_that_pulls_back_byte_identical(oras_client, registry, tmp_path, bucket):
    payload = bytes(range(256)) * 4000
    (tmp_path / "detector.xml").write_bytes(payload)
    response = push(oras_client, registry, tmp_path / "detector.xml", "3.0")
    assert response.status_code == 201, response.text

    artifact = Artifact.objects.with_version().get()
    assert (artifact.version.registered_model.name, artifact.version.version) == ("person-detection", "3.0")
    assert (artifact.precision, artifact.target_device, artifact.format, artifact.score) == (
        "INT8",
        "NPU",
        "openvino",
        0.87,
    )
    assert artifact.version.labels == ["person", "bicycle"]
    assert artifact.created_by.username == "alice" and artifact.original_filename == "detector.xml"
    assert artifact.sha256 == sha256(payload)[7:] and artifact.size == len(payload)
    # Only the file is kept, under the artifact's own id; the client's config blob is not.
    assert bucket_keys(bucket) == [artifact.file.name] and artifact.file.name.startswith(f"artifacts/{artifact.id}/")
    assert not BlobUpload.objects.exists()
    served = registry.manifest(REPO, "3.0-int8-npu")
    assert response.headers["Docker-Content-Digest"] == served.headers["Docker-Content-Digest"]

    pulled = oras_client.pull(target=f"{registry.host}/{REPO}:3.0-int8-npu", outdir=str(tmp_path / "out"))
    assert [p.rsplit("/", 1)[-1] for p in pulled] == ["detector.xml"]
    assert (tmp_path / "out" / "detector.xml").read_bytes() == payload


def test_oras_pulls_a_variant_by_alias(oras_client, registry, tmp_path, user):
    register(b"fp32 model", precision="FP32", target_device="CPU")
    npu = register(b"int8 npu model", precision="INT8", target_device="NPU")
    services.set_alias(registered_model=npu.version.registered_model, name="production", version=npu.version)

    pulled = oras_client.pull(target=f"{registry.host}/{REPO}:production-int8-npu", outdir=str(tmp_path / "tag"))
    assert open(pulled[0], "rb").read() == b"int8 npu model"
    # Or from the alias's index, choosing the child by its device annotation.
    index = oras_client.get_manifest(f"{registry.host}/{REPO}:production")
    [child] = [m for m in index["manifests"] if m["annotations"]["org.model-registry.target-device"] == "NPU"]
    pulled = oras_client.pull(target=f"{registry.host}/{REPO}@{child['digest']}", outdir=str(tmp_path / "index"))
    assert open(pulled[0], "rb").read() == b"int8 npu model"


def test_a_chunked_push_is_joined_and_checked(oras_client, registry, tmp_path, bucket, small_parts):
    payload = b"0123456789abcdef" * (700 * 1024)  # 11.2 MiB in chunks of 5 MiB
    (tmp_path / "big.bin").write_bytes(payload)
    response = push(oras_client, registry, tmp_path / "big.bin", "4.0", do_chunked=True, chunk_size=5 * MiB)
    assert response.status_code == 201, response.text
    artifact = Artifact.objects.get()
    assert artifact.sha256 == sha256(payload)[7:] and artifact.size == len(payload)
    assert bucket_keys(bucket) == [artifact.file.name]
    # Streamed to S3 in parts (a multipart object), never whole in memory.
    assert bucket.Object(artifact.file.name).e_tag.strip('"').endswith("-3")
    pulled = registry.get(f"/v2/{REPO}/blobs/sha256:{artifact.sha256}")
    assert pulled.content == payload


def test_a_blob_whose_digest_differs_from_the_named_one_is_refused_and_not_kept(registry, bucket):
    wrong = sha256(b"something else")
    response = registry.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": wrong}, data=b"model bytes")
    assert response.status_code == 400
    assert oci_errors(response) == ["DIGEST_INVALID"]
    assert response.json()["errors"][0]["detail"]["digest"] == sha256(b"model bytes")
    assert not BlobUpload.objects.exists() and bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []

    start = registry.post(f"/v2/{REPO}/blobs/uploads/")
    location = start.headers["Location"]
    for offset, chunk in ((0, b"first "), (6, b"second")):
        patched = registry.patch(location, data=chunk, headers={"Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
        assert patched.status_code == 202, patched.text
        location = patched.headers["Location"]
    finished = registry.put(location, params={"digest": wrong})
    assert oci_errors(finished) == ["DIGEST_INVALID"]
    assert not BlobUpload.objects.exists() and bucket_keys(bucket) == []


def test_a_chunk_that_does_not_follow_the_last_one_answers_416(registry, bucket):
    location = registry.post(f"/v2/{REPO}/blobs/uploads/").headers["Location"]
    assert registry.patch(location, data=b"abc", headers={"Content-Range": "0-2"}).status_code == 202
    status = registry.get(location)
    assert status.status_code == 204 and status.headers["Range"] == "0-2"
    gap = registry.patch(location, data=b"xyz", headers={"Content-Range": "5-7"})
    assert gap.status_code == 416 and oci_errors(gap) == ["BLOB_UPLOAD_INVALID"]
    assert gap.headers["Range"] == "0-2"
    done = registry.put(location, params={"digest": sha256(b"abcdef")}, data=b"def")
    assert done.status_code == 201 and done.headers["Docker-Content-Digest"] == sha256(b"abcdef")
    assert registry.get(done.headers["Location"]).content == b"abcdef"


def test_a_monolithic_put_stores_the_blob_in_one_request(registry, bucket):
    location = registry.post(f"/v2/{REPO}/blobs/uploads/").headers["Location"]
    done = registry.put(location, params={"digest": sha256(b"whole blob")}, data=b"whole blob")
    assert done.status_code == 201
    head = registry.head(f"/v2/{REPO}/blobs/{sha256(b'whole blob')}")
    assert head.status_code == 200 and head.headers["Content-Length"] == "10"
    assert registry.get(location).status_code == 404  # the session is over


def test_an_abandoned_upload_leaves_nothing_after_prune_uploads(registry, bucket):
    location = registry.post(f"/v2/{REPO}/blobs/uploads/").headers["Location"]
    registry.patch(location, data=b"half a model", headers={"Content-Range": "0-11"})
    unclaimed = registry.post(
        f"/v2/{REPO}/blobs/uploads/", params={"digest": sha256(b"never named")}, data=b"never named"
    )
    assert unclaimed.status_code == 201
    assert BlobUpload.objects.count() == 2 and len(bucket_keys(bucket)) == 2

    call_command("prune_uploads")
    assert BlobUpload.objects.count() == 2  # still within the session lifetime
    BlobUpload.objects.update(updated_at=timezone.now() - timedelta(hours=25))
    call_command("prune_uploads")
    assert not BlobUpload.objects.exists() and bucket_keys(bucket) == []


def test_an_upload_prune_uploads_removes_while_its_blob_arrives_is_unknown_and_leaves_nothing(bucket, user):
    """prune_uploads (on another connection) removes the upload as idle while its blob streams in:
    the push is refused as an unknown upload, and the stored blob does not stay behind."""
    upload = blob_uploads.start_upload(repository="person-detection", user=user)

    def arriving():
        yield b"whole "
        on_a_connection_of_its_own(lambda: blob_uploads.discard_upload(BlobUpload.objects.get(pk=upload.pk)))
        yield b"blob"

    with pytest.raises(blob_uploads.BlobUploadError) as refused:
        blob_uploads.finish_upload(upload, digest=sha256(b"whole blob"), chunks=arriving())

    assert refused.value.code == "BLOB_UPLOAD_UNKNOWN" and refused.value.detail == {"upload": str(upload.id)}
    assert not BlobUpload.objects.exists() and bucket_keys(bucket) == []


def test_pushes_need_credentials_and_the_add_artifact_permission(registry, django_user_model, bucket):
    anonymous = requests.post(f"{registry.base_url}/v2/{REPO}/blobs/uploads/", timeout=30)
    assert anonymous.status_code == 401 and oci_errors(anonymous) == ["UNAUTHORIZED"]
    assert f'scope="repository:{REPO}:pull,push"' in anonymous.headers["WWW-Authenticate"]
    reader = django_user_model.objects.create_user("bob")
    key = Token.objects.create(user=reader).key
    denied = registry.post(f"/v2/{REPO}/blobs/uploads/", auth=("bob", key))
    assert denied.status_code == 403 and oci_errors(denied) == ["DENIED"]
    assert not BlobUpload.objects.exists()


def _push_raw(registry, content, annotations=ANNOTATIONS, tag="5.0"):
    assert registry.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": sha256(content)}, data=content).ok
    return registry.put_manifest(REPO, tag, content, annotations, title="m.bin")


def test_a_repeated_push_is_accepted_and_a_different_file_for_the_variant_refused(registry, bucket):
    first = _push_raw(registry, b"model one")
    assert first.status_code == 201, first.text
    again = _push_raw(registry, b"model one")
    assert again.status_code == 201 and again.headers["Docker-Content-Digest"] == first.headers["Docker-Content-Digest"]
    other = _push_raw(registry, b"model two")
    assert other.status_code == 409 and oci_errors(other) == ["DENIED"]
    artifact = Artifact.objects.get()
    # The refused manifest added nothing; the pushed blob waits for a manifest (or prune_uploads).
    pushed = BlobUpload.objects.get()
    assert pushed.sha256 == sha256(b"model two")[7:]
    assert bucket_keys(bucket) == sorted([artifact.file.name, pushed.key])


def test_a_manifest_with_invalid_metadata_is_refused_and_its_blob_kept_for_a_corrected_one(registry, bucket):
    refused = _push_raw(registry, b"model", annotations={"org.model-registry.precision": "FP17"})
    assert refused.status_code == 400 and oci_errors(refused) == ["MANIFEST_INVALID"]
    assert "precision" in refused.json()["errors"][0]["detail"]
    assert not Artifact.objects.exists() and BlobUpload.objects.count() == 1
    manifest = registry.put_manifest(REPO, "5.0", b"model", {"org.model-registry.precision": "FP16"})
    assert manifest.status_code == 201, manifest.text
    assert Artifact.objects.get().precision == "FP16"


def test_a_manifest_naming_an_unknown_blob_or_an_index_of_unknown_variants_is_refused(registry, bucket):
    unknown = registry.put_manifest(REPO, "1", b"absent")
    assert unknown.status_code == 404 and oci_errors(unknown) == ["MANIFEST_BLOB_UNKNOWN"]
    image = registry.put(f"/v2/{REPO}/manifests/1", data="{}", headers={"Content-Type": "application/json"})
    assert image.status_code == 400 and oci_errors(image) == ["MANIFEST_INVALID"]
    assert not Artifact.objects.exists()
    register(b"fp32 cpu", version="1")
    entry = {"mediaType": MANIFEST, "digest": sha256(b"x"), "size": 1}
    entry["annotations"] = {"org.model-registry.precision": "INT8", "org.model-registry.target-device": "NPU"}
    index = registry.put(
        f"/v2/{REPO}/manifests/1",
        data=json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [entry]}),
        headers={"Content-Type": INDEX},
    )
    assert index.status_code == 404 and oci_errors(index) == ["MANIFEST_BLOB_UNKNOWN"]
    assert "INT8/NPU/openvino" in index.json()["errors"][0]["message"]
    assert Artifact.objects.count() == 1


def test_a_manifest_naming_bytes_another_variant_holds_gets_its_own_copy(registry, bucket, user):
    existing = register(b"shared bytes", model="other-model", version="1")
    response = registry.put_manifest(REPO, "1", b"shared bytes")
    assert response.status_code == 201, response.text
    copy = Artifact.objects.exclude(pk=existing.pk).get()
    assert copy.sha256 == existing.sha256 and copy.file.name != existing.file.name
    assert bucket_keys(bucket) == sorted([existing.file.name, copy.file.name])


def test_a_blob_over_the_size_limit_is_refused_and_not_kept(registry, bucket, settings):
    settings.REGISTRY_MAX_UPLOAD_BYTES = 1000
    big = b"x" * 1001
    declared = registry.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": sha256(big)}, data=big)
    assert declared.status_code == 413 and oci_errors(declared) == ["SIZE_INVALID"]
    location = registry.post(f"/v2/{REPO}/blobs/uploads/").headers["Location"]
    assert registry.patch(location, data=b"x" * 600, headers={"Content-Range": "0-599"}).status_code == 202
    over = registry.patch(location, data=b"x" * 600, headers={"Content-Range": "600-1199"})
    assert over.status_code == 413 and oci_errors(over) == ["SIZE_INVALID"]
    malformed = registry.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": "md5:abc"}, data=b"x")
    assert malformed.status_code == 400 and oci_errors(malformed) == ["DIGEST_INVALID"]
    # Only the open upload and its first chunk remain, for the client to finish or prune_uploads.
    [pending] = BlobUpload.objects.all()
    assert pending.offset == 600 and bucket_keys(bucket) == [pending.chunks[0]["key"]]


def test_a_mount_starts_an_ordinary_upload_and_deletes_are_unsupported(registry, bucket, user):
    artifact = register(b"mounted?", model="other-model", version="1")
    mount = registry.post(
        f"/v2/{REPO}/blobs/uploads/", params={"mount": f"sha256:{artifact.sha256}", "from": "models/other-model"}
    )
    assert mount.status_code == 202 and mount.headers["Location"].startswith(f"/v2/{REPO}/blobs/uploads/")
    assert BlobUpload.objects.get().state == BlobUpload.State.UPLOADING
    for path in ("/v2/models/other-model/manifests/1", f"/v2/models/other-model/blobs/sha256:{artifact.sha256}"):
        refused = registry.delete(path)
        assert refused.status_code == 405 and oci_errors(refused) == ["UNSUPPORTED"]
        assert refused.headers["Docker-Distribution-API-Version"] == "registry/2.0"
    unknown = registry.get(f"/v2/{REPO}/referrers/sha256:{artifact.sha256}")
    assert unknown.status_code == 404 and oci_errors(unknown) == ["UNSUPPORTED"]
    assert Artifact.objects.get() == artifact


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need a server database (CI runs PostgreSQL)")
def test_a_manifest_claiming_a_blob_prune_uploads_is_removing_never_leaves_an_artifact_without_its_file(
    registry, bucket
):
    """prune_uploads found no artifact owning the idle blob; before it deletes the blob, a manifest
    (served on another connection) names it. One of the two takes it: never both."""
    assert registry.post(f"/v2/{REPO}/blobs/uploads/", params={"digest": sha256(b"late")}, data=b"late").ok
    BlobUpload.objects.update(updated_at=timezone.now() - timedelta(hours=25))
    answers = []

    def push_the_manifest():
        answers.append(registry.put_manifest(REPO, "5.0", b"late", ANNOTATIONS, title="m.bin"))

    with connection.execute_wrapper(right_after('SELECT "models_app_artifact"."file"', push_the_manifest)):
        call_command("prune_uploads", stdout=io.StringIO())

    assert [a.file.name for a in Artifact.objects.all() if a.file.name not in bucket_keys(bucket)] == []
    assert answers[0].status_code == 404 and oci_errors(answers[0]) == ["MANIFEST_BLOB_UNKNOWN"]
    assert not Artifact.objects.exists() and not BlobUpload.objects.exists()
    assert bucket_keys(bucket) == []
