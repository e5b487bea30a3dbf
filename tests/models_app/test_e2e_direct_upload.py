"""The upload page sends files from the direct-upload threshold up straight to S3, in a real
headless Chromium (same set-up as test_e2e_browser.py)."""

import hashlib
import os

import pytest

from models_app.models import Artifact, UploadSession
from tests.models_app.test_e2e_browser import open_page, record_progress

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MiB = 1024 * 1024


def test_a_big_file_goes_straight_to_storage_with_progress(
    browser,
    live_server,
    user,
    bucket,
    settings,
    tmp_path,
):
    settings.REGISTRY_DIRECT_UPLOAD_THRESHOLD = MiB
    settings.REGISTRY_UPLOAD_PART_BYTES = 5 * MiB
    # The browser PUTs the parts to the bucket from the registry's origin.
    bucket.meta.client.put_bucket_cors(
        Bucket=bucket.name,
        CORSConfiguration={
            "CORSRules": [
                {"AllowedOrigins": ["*"], "AllowedMethods": ["PUT"], "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"]}
            ]
        },
    )
    page = open_page(browser, live_server, user=user)
    page.goto("/upload/")
    payload = os.urandom(11 * MiB)
    model_file = tmp_path / "big-detector.bin"
    model_file.write_bytes(payload)
    progress = record_progress(page)
    page.get_by_label("Model file").set_input_files(str(model_file))
    page.get_by_label("Model name").fill("big-detector")
    page.get_by_label("Version").fill("2.0")
    page.get_by_label("Precision").select_option("INT8")
    page.get_by_label("Labels").fill("person, car")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/m/big-detector/v/2.0/#variant-*")

    session = UploadSession.objects.get()
    artifact = Artifact.objects.with_version().get()
    assert session.state == "completed" and session.artifact == artifact and session.part_count == 3
    assert artifact.sha256 == hashlib.sha256(payload).hexdigest() and artifact.size == len(payload)
    assert artifact.precision == "INT8" and artifact.version.labels == ["person", "car"]
    assert [obj.key for obj in bucket.objects.all()] == [artifact.file.name]
    assert any(state == "sending" for _, state in progress) and max(v for v, _ in progress) == 100
    assert page.js_errors == []


def test_the_page_sends_small_files_through_the_api(
    browser,
    live_server,
    user,
    bucket,
    settings,
    tmp_path,
):
    settings.REGISTRY_DIRECT_UPLOAD_THRESHOLD = 100 * MiB
    page = open_page(browser, live_server, user=user)
    page.goto("/upload/")
    model_file = tmp_path / "small.bin"
    model_file.write_bytes(b"small model")
    page.get_by_label("Model file").set_input_files(str(model_file))
    page.get_by_label("Model name").fill("small-detector")
    page.get_by_label("Version").fill("1")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url("**/m/small-detector/v/1/#variant-*")
    assert not UploadSession.objects.exists() and Artifact.objects.count() == 1
