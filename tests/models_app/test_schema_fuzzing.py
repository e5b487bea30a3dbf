"""Schemathesis over /api/schema/: every operation, every phase, with a token that may write, a
fixed seed and a bounded number of examples. No request may end in a server error, and every
answer must be one the schema documents."""

import subprocess
import sys
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from models_app.models import RegisteredModel
from tests.conftest import open_multipart_uploads

pytestmark = pytest.mark.django_db(transaction=True)
ST = Path(sys.executable).parent / "st"


def test_the_api_answers_every_generated_request_without_a_server_error(
    live_server, admin_user, bucket, tmp_path, monkeypatch
):
    # The Geti endpoints are fuzzed too, with the integration off: they answer 404 geti_disabled.
    monkeypatch.delenv("GETI_HOST", raising=False)
    token = Token.objects.create(user=admin_user).key
    RegisteredModel.objects.create(name="fuzzed")
    result = subprocess.run(
        [str(ST), "run", f"{live_server.url}/api/schema/", "--url", live_server.url]
        + ["--header", f"Authorization: Token {token}", "--seed", "1", "--max-examples", "10"]
        + [
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--workers",
            "1",
            "--request-timeout",
            "30",
        ]
        + ["--checks", "not_a_server_error,status_code_conformance", "--generation-database", "none"]
        + ["--report", "junit", "--report-dir", str(tmp_path), "--no-color"],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=tmp_path,
    )
    # Direct uploads the fuzzer started and left open would outlive the test in the shared bucket.
    for upload in open_multipart_uploads(bucket):
        bucket.meta.client.abort_multipart_upload(Bucket=bucket.name, Key=upload["Key"], UploadId=upload["UploadId"])
    assert result.returncode == 0, result.stdout[-20000:]
