import io
import uuid

import boto3
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.authtoken.models import Token

from models_app.models import Artifact
from tests.conftest import bucket_keys, s3_storages

pytestmark = pytest.mark.django_db


def run(*args, **kwargs):
    out = io.StringIO()
    call_command(*args, stdout=out, **kwargs)
    return out.getvalue()


def test_ensure_bucket_creates_a_missing_bucket(settings, s3_endpoint):
    name = f"fresh-{uuid.uuid4().hex[:8]}"
    settings.STORAGES = s3_storages(s3_endpoint, name)
    assert f"Created bucket {name}" in run("ensure_bucket")
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.head_bucket(Bucket=name)
    assert f"Bucket {name} exists" in run("ensure_bucket")


def test_ensure_bucket_fails_clearly_when_the_endpoint_is_down(settings):
    from tests.conftest import free_port

    settings.STORAGES = s3_storages(f"http://127.0.0.1:{free_port()}", "x")
    with pytest.raises(CommandError, match="Cannot reach"):
        run("ensure_bucket")


def test_issue_token_prints_the_users_token(user):
    key = run("issue_token", "alice").strip()
    assert Token.objects.get(user=user).key == key
    assert run("issue_token", "alice").strip() == key
    rotated = run("issue_token", "alice", "--rotate").strip()
    assert rotated != key and Token.objects.get(user=user).key == rotated


def test_issue_token_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="No user named"):
        run("issue_token", "nobody")


def test_ensure_admin_creates_the_admin_once_and_prints_how_to_log_in(
    django_user_model, settings, tmp_path, monkeypatch
):
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("REGISTRY_ADMIN_PASSWORD", raising=False)
    first = run("ensure_admin")
    password = (tmp_path / "admin-password").read_text().strip()
    assert f"password {password}" in first and "/admin/" in first
    assert django_user_model.objects.get(username="admin").check_password(password)
    assert f"password {password}" in run("ensure_admin")
    assert django_user_model.objects.filter(username="admin").count() == 1


def test_prune_artifacts_removes_only_unreferenced_objects(artifact, bucket):
    bucket.put_object(Key="artifacts/orphan/model.zip", Body=b"left behind")
    out = run("prune_artifacts", "--older-than-hours", "0")
    assert "deleting artifacts/orphan/model.zip" in out
    assert bucket_keys(bucket) == [Artifact.objects.get().file.name]


def test_prune_artifacts_dry_run_keeps_everything(artifact, bucket):
    bucket.put_object(Key="artifacts/orphan/model.zip", Body=b"left behind")
    assert "would delete artifacts/orphan/model.zip" in run("prune_artifacts", "--older-than-hours", "0", "--dry-run")
    assert len(bucket_keys(bucket)) == 2


def test_prune_artifacts_spares_recent_objects(bucket):
    bucket.put_object(Key="artifacts/in-flight/model.zip", Body=b"uploading")
    assert "0 orphaned" in run("prune_artifacts")
    assert bucket_keys(bucket) == ["artifacts/in-flight/model.zip"]
