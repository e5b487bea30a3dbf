"""Push and pull through the Python client against a live registry and a real S3 endpoint."""

import hashlib
import json
import os

import pytest
import requests
from registry_client import ChecksumMismatch, Conflict
from registry_client.transfer import crc32

from models_app.models import Artifact, UploadSession
from tests.conftest import bucket_keys, open_multipart_uploads

from .conftest import Interrupted, MiB, interrupt_after, interrupted_push

pytestmark = pytest.mark.django_db(transaction=True)

VARIANT = {"model": "person-detection", "version": "1", "precision": "INT8", "target_device": "NPU"}


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def upload_states(client_home):
    return list((client_home / "cache" / "uploads").glob("*.json"))


# --- push ------------------------------------------------------------------------------------


def test_push_sends_the_parts_straight_to_storage(registry, model_file, small_parts, bucket, served, client_home):
    path = model_file(11 * MiB)

    artifact = registry.push(path, labels=["person"], score=0.9, **VARIANT)

    row = Artifact.objects.with_version().get()
    assert artifact["id"] == str(row.id) and row.sha256 == sha256(path) and row.size == 11 * MiB
    assert (row.precision, row.target_device, row.score, row.version.labels) == ("INT8", "NPU", 0.9, ["person"])
    session = UploadSession.objects.get()
    assert session.state == "completed" and session.sha256 == row.sha256 and session.part_count == 3
    assert bucket_keys(bucket) == [row.file.name]
    # The bytes never went through the registry: it saw the session's start, one request to sign
    # the parts' URLs for their CRC32s, and the completion.
    assert [(m, p) for m, p, _, _ in served] == [
        ("POST", "/api/v1/uploads/"),
        ("POST", f"/api/v1/uploads/{session.id}/part-urls/"),
        ("POST", f"/api/v1/uploads/{session.id}/complete/"),
    ]
    assert session.checksum_algorithm == "CRC32"
    assert upload_states(client_home) == []


def received_parts(bucket, session):
    """The part numbers S3 holds for a direct upload, asked of the bucket itself."""
    listed = bucket.meta.client.list_parts(Bucket=bucket.name, Key=session.key, UploadId=session.upload_id)
    return [p["PartNumber"] for p in listed.get("Parts", [])]


def put_part(registry, session, number, data):
    """PUT ``data`` as part ``number`` of ``session``, as another copy of the push would."""
    checksum = crc32(data)
    body = {"parts": [{"part_number": number, "checksum_crc32": checksum}]}
    url = registry._json("POST", f"uploads/{session.id}/part-urls/", json=body)["parts"][0]["url"]
    requests.put(url, data=data, headers={"x-amz-checksum-crc32": checksum}, timeout=30).raise_for_status()


def test_an_interrupted_push_resumes_with_the_parts_left(
    registry, model_file, small_parts, bucket, client_home, storage_proxy
):
    path = model_file(20 * MiB)  # four parts of 5 MiB
    interrupted_push(registry, path, 10 * MiB, **VARIANT)

    assert Artifact.objects.count() == 0
    session = UploadSession.objects.get()
    assert session.state == "pending" and received_parts(bucket, session) == [1, 2]
    state = json.loads(upload_states(client_home)[0].read_text())
    assert state["session"]["id"] == str(session.id)
    assert (upload_states(client_home)[0].stat().st_mode & 0o777) == 0o600
    storage_proxy.received.clear()

    reports = []
    artifact = registry.push(path, progress=lambda done, total: reports.append(done), **VARIANT)

    # Same session, and only parts 3 and 4 went out: the progress starts at the 10 MiB sent before.
    assert storage_proxy.received == [3, 4]
    assert UploadSession.objects.get().state == "completed" and UploadSession.objects.count() == 1
    assert reports == [10 * MiB, 15 * MiB, 20 * MiB]
    assert artifact["sha256"] == sha256(path) and artifact["size"] == 20 * MiB
    assert bucket_keys(bucket) == [Artifact.objects.get().file.name] and open_multipart_uploads(bucket) == []
    assert upload_states(client_home) == []


def test_a_push_from_another_copy_of_the_file_resumes_without_a_local_record(
    registry, model_file, small_parts, bucket, client_home, storage_proxy, served, tmp_path
):
    path = model_file(20 * MiB)
    interrupted_push(registry, path, 10 * MiB, **VARIANT)
    session = UploadSession.objects.get()
    assert received_parts(bucket, session) == [1, 2]
    # Another machine: the same bytes under another folder, and no record of the upload.
    copy = tmp_path / "elsewhere" / path.name
    copy.parent.mkdir()
    copy.write_bytes(path.read_bytes())
    for record in upload_states(client_home):
        record.unlink()
    storage_proxy.received.clear()
    served.clear()

    artifact = registry.push(copy, **VARIANT)

    assert storage_proxy.received == [3, 4]
    assert [(m, p) for m, p, _, _ in served] == [
        ("POST", "/api/v1/uploads/"),  # the same session, replayed under its Idempotency-Key
        ("GET", f"/api/v1/uploads/{session.id}/"),
        ("GET", f"/api/v1/uploads/{session.id}/parts/"),
        ("POST", f"/api/v1/uploads/{session.id}/part-urls/"),
        ("POST", f"/api/v1/uploads/{session.id}/complete/"),
    ]
    row = Artifact.objects.get()
    assert artifact["sha256"] == row.sha256 == sha256(path) and UploadSession.objects.get().state == "completed"
    stored = bucket.Object(row.file.name).get()["Body"].read()
    assert hashlib.sha256(stored).hexdigest() == sha256(path)
    assert open_multipart_uploads(bucket) == [] and upload_states(client_home) == []


def test_parts_the_local_record_does_not_know_are_not_sent_again(
    registry, model_file, small_parts, bucket, client_home, storage_proxy
):
    path = model_file(15 * MiB)
    interrupted_push(registry, path, 5 * MiB, **VARIANT)
    # A part sent after the record was written, as another copy of the push would have.
    session = UploadSession.objects.get()
    put_part(registry, session, 2, path.read_bytes()[5 * MiB : 10 * MiB])
    assert received_parts(bucket, session) == [1, 2]
    storage_proxy.received.clear()

    artifact = registry.push(path, **VARIANT)

    assert storage_proxy.received == [3]
    assert artifact["sha256"] == sha256(path) and UploadSession.objects.get().state == "completed"


def test_a_part_whose_local_bytes_changed_since_the_interrupted_push_is_sent_again(
    registry, model_file, small_parts, bucket, client_home, storage_proxy
):
    path = model_file(20 * MiB)
    interrupted_push(registry, path, 10 * MiB, **VARIANT)
    assert received_parts(bucket, UploadSession.objects.get()) == [1, 2]
    # Part 2's bytes change, size and modification time kept: the local record still applies.
    stat = path.stat()
    with open(path, "r+b") as handle:
        handle.seek(6 * MiB)
        handle.write(b"changed")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    storage_proxy.received.clear()

    artifact = registry.push(path, **VARIANT)

    assert storage_proxy.received == [2, 3, 4]
    row = Artifact.objects.get()
    assert artifact["sha256"] == row.sha256 == sha256(path)
    assert hashlib.sha256(bucket.Object(row.file.name).get()["Body"].read()).hexdigest() == sha256(path)


def test_a_push_whose_session_was_aborted_opens_a_new_one(registry, model_file, small_parts, bucket, client_home):
    path = model_file(10 * MiB)
    interrupted_push(registry, path, 5 * MiB, **VARIANT)
    first = UploadSession.objects.get()
    registry.request("DELETE", f"uploads/{first.id}/")
    for record in upload_states(client_home):
        record.unlink()

    artifact = registry.push(path, **VARIANT)

    first.refresh_from_db()
    second = UploadSession.objects.exclude(pk=first.pk).get()
    assert (first.state, second.state) == ("aborted", "completed")
    assert artifact["id"] == str(second.id) and artifact["sha256"] == sha256(path)
    assert open_multipart_uploads(bucket) == []


def test_a_push_refused_before_is_tried_again(registry, model_file, bucket):
    taken = registry.push(model_file(MiB, name="first.bin"), **VARIANT)
    path = model_file(MiB)
    with pytest.raises(Conflict):
        registry.push(path, **VARIANT)
    registry.delete_artifact(taken["id"])

    artifact = registry.push(path, **VARIANT)  # not the 409 kept with the first try's key

    assert artifact["sha256"] == sha256(path) and Artifact.objects.get().original_filename == "detector.bin"


def test_a_push_expecting_other_bytes_aborts_the_session_it_had_started(registry, model_file, small_parts, bucket):
    path = model_file(10 * MiB)
    interrupted_push(registry, path, 5 * MiB, **VARIANT)

    with pytest.raises(ChecksumMismatch):
        registry.push(path, sha256="0" * 64, **VARIANT)

    first, second = UploadSession.objects.order_by("created_at")
    assert first.state == "aborted" and second.state != "pending"
    assert bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []


def test_a_push_whose_sha256_does_not_match_is_refused(registry, model_file, bucket, client_home):
    path = model_file(2 * MiB)

    with pytest.raises(ChecksumMismatch) as caught:
        registry.push(path, sha256="0" * 64, **VARIANT)

    assert caught.value.status == 400 and "sha256" in caught.value.fields
    assert Artifact.objects.count() == 0 and bucket_keys(bucket) == [] and open_multipart_uploads(bucket) == []
    assert upload_states(client_home) == []


def test_a_taken_variant_is_a_conflict_before_any_byte_is_sent(registry, model_file, served):
    registry.push(model_file(MiB), **VARIANT)
    served.clear()

    with pytest.raises(Conflict) as caught:
        registry.push(model_file(MiB, name="other.bin"), **VARIANT)

    assert caught.value.status == 409 and caught.value.code == "conflict"
    assert [(m, p) for m, p, _, _ in served] == [("POST", "/api/v1/uploads/")]


def test_push_streams_through_the_api_when_storage_is_local(live_server, token, local_storage, model_file, served):
    from registry_client import Registry

    path = model_file(3 * MiB)
    reports = []

    artifact = Registry(live_server.url, token).push(path, progress=lambda d, t: reports.append(d), **VARIANT)

    assert artifact["sha256"] == sha256(path) and (local_storage / Artifact.objects.get().file.name).exists()
    # 501 direct_upload_unavailable first, then the file as the body of one PUT.
    assert [(m, p) for m, p, _, _ in served] == [
        ("POST", "/api/v1/uploads/"),
        ("PUT", "/api/v1/artifacts/upload/detector.bin"),
    ]
    assert reports[-1] == 3 * MiB


def test_a_streamed_push_with_a_wrong_sha256_leaves_nothing(live_server, token, local_storage, model_file):
    from registry_client import Registry

    with pytest.raises(ChecksumMismatch):
        Registry(live_server.url, token).push(model_file(MiB), sha256="f" * 64, **VARIANT)

    assert Artifact.objects.count() == 0 and list(local_storage.rglob("*.bin")) == []


# --- pull ------------------------------------------------------------------------------------


@pytest.fixture
def pushed(registry, model_file):
    path = model_file(5 * MiB + 123)
    registry.push(path, **VARIANT)
    return path


def test_pull_resolves_downloads_from_storage_and_verifies(registry, pushed, tmp_path, served):
    served.clear()

    result = registry.pull(
        "person-detection", version="1", target_device="NPU", precision="INT8", dest=tmp_path / "out"
    )

    assert result.downloaded and result.transferred == pushed.stat().st_size
    assert result.path == tmp_path / "out" / "detector.bin" and result.path.read_bytes() == pushed.read_bytes()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["detector.bin"]  # no partial file left
    # The registry answered the resolve and the redirect; the bytes came from S3.
    paths = [(m, p, q) for m, p, q, _ in served]
    assert paths[0][1] == "/api/v1/registered-models/person-detection/resolve/"
    assert paths[1][1].endswith("/download/") and paths[1][2] == "mode=redirect" and len(paths) == 2


def test_a_pull_of_a_current_copy_transfers_nothing(registry, pushed, tmp_path, served):
    registry.pull("person-detection", version="1", dest=tmp_path)
    served.clear()

    result = registry.pull("person-detection", version="1", dest=tmp_path)

    assert not result.downloaded and result.transferred == 0
    assert [p for _, p, _, _ in served if "/download/" in p] == []


def test_a_corrupted_local_copy_is_detected_and_fetched_again(registry, pushed, tmp_path):
    first = registry.pull("person-detection", version="1", dest=tmp_path)
    data = bytearray(first.path.read_bytes())
    data[1000] ^= 0xFF  # same size, one byte flipped
    first.path.write_bytes(bytes(data))

    result = registry.pull("person-detection", version="1", dest=tmp_path)

    assert result.downloaded and result.transferred == pushed.stat().st_size
    assert result.path.read_bytes() == pushed.read_bytes()


@pytest.mark.parametrize("mode", ["proxy", "redirect"])
def test_an_interrupted_pull_resumes_where_it_stopped(registry, pushed, tmp_path, served, mode):
    size = pushed.stat().st_size
    with pytest.raises(Interrupted):
        registry.pull("person-detection", version="1", dest=tmp_path, mode=mode, progress=interrupt_after(2 * MiB))
    partials = list(tmp_path.glob(".detector.bin.*.part"))
    assert not (tmp_path / "detector.bin").exists() and len(partials) == 1
    kept = partials[0].stat().st_size
    assert 2 * MiB <= kept < size
    served.clear()

    result = registry.pull("person-detection", version="1", dest=tmp_path, mode=mode)

    assert result.downloaded and result.resumed_from == kept and result.transferred == size - kept
    assert result.path.read_bytes() == pushed.read_bytes() and list(tmp_path.glob("*.part")) == []
    if mode == "proxy":  # the registry itself got the Range request
        assert [r for _, p, _, r in served if p.endswith("/download/")] == [f"bytes={kept}-"]


def test_a_download_whose_bytes_are_not_the_registered_ones_is_refused(registry, pushed, tmp_path, bucket):
    key = Artifact.objects.get().file.name
    bucket.put_object(Key=key, Body=b"x" * pushed.stat().st_size)  # the stored object went bad

    with pytest.raises(ChecksumMismatch):
        registry.pull("person-detection", version="1", dest=tmp_path / "out")

    assert list((tmp_path / "out").iterdir()) == []  # neither the target nor a partial file


def test_a_partial_file_with_wrong_bytes_is_dropped_and_the_pull_starts_over(registry, pushed, tmp_path):
    artifact = next(registry.artifacts())
    partial = tmp_path / f".detector.bin.{artifact['sha256'][:16]}.part"
    partial.write_bytes(b"\0" * MiB)  # the right name, not the right bytes

    result = registry.pull("person-detection", version="1", dest=tmp_path)

    assert result.downloaded and result.resumed_from == 0 and result.transferred == pushed.stat().st_size
    assert result.path.read_bytes() == pushed.read_bytes() and not partial.exists()
