"""Writers racing for the same rows: the database decides which one wins, and the loser is told."""

import io
import threading
import time
from datetime import timedelta

import pytest
import requests
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from models_app.inspection.service import inspect_artifact
from models_app.models import Artifact, ArtifactInspection, RegisteredModel, UploadSession
from tests.conftest import bucket_keys, open_multipart_uploads, right_after
from tests.models_app.test_direct_uploads import CONTENT, put_parts, start


@pytest.mark.django_db(transaction=True)
def test_two_clients_registering_the_same_variant_get_one_201_and_one_409(live_server, user, bucket):
    token = Token.objects.create(user=user).key
    barrier = threading.Barrier(2)
    statuses = []

    def register(content):
        barrier.wait()
        response = requests.post(
            f"{live_server.url}/api/v1/artifacts/",
            headers={"Authorization": f"Token {token}"},
            data={"registered_model": "racer", "version": "1", "precision": "INT8"},
            files={"file": ("m.zip", content)},
            timeout=60,
        )
        statuses.append((response.status_code, response.json()))

    threads = [threading.Thread(target=register, args=(bytes([i]) * 200_000,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(code for code, _ in statuses) == [201, 409]
    assert [body["error"]["code"] for code, body in statuses if code == 409] == ["conflict"]
    assert RegisteredModel.objects.count() == 1
    assert Artifact.objects.count() == 1
    # The loser's object was removed: only the winner's file is in the bucket.
    assert bucket_keys(bucket) == [Artifact.objects.get().file.name]


def lock_waits():
    """How many queries of this database wait for a lock, asked on a connection of its own."""
    counts = []

    def ask():
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                counts.append(cursor.fetchone()[0])
        finally:
            connection.close()

    thread = threading.Thread(target=ask)
    thread.start()
    thread.join()
    return counts[0]


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks and deferred foreign keys are PostgreSQL's (CI runs it)"
)
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("target", ["artifact", "version"])
def test_a_delete_racing_the_inspection_of_its_artifact_removes_both(target, api_client, artifact, bucket):
    """The worker commits the artifact's inspection just before the delete removes the artifact
    row, after the delete removed the inspections it could see: the delete still succeeds, and
    nothing of the artifact stays. (It used to fail at commit on the foreign key, a 409.)"""
    written, commit, finished, outcome = threading.Event(), threading.Event(), threading.Event(), []

    def inspect():
        try:
            with transaction.atomic():
                assert inspect_artifact(artifact) is not None
                written.set()
                assert commit.wait(30)
            outcome.append("committed")
        except IntegrityError:
            outcome.append("artifact gone")
        finally:
            finished.set()
            connection.close()

    def commit_the_inspection_now(execute, sql, params, many, context):
        if sql.startswith('DELETE FROM "models_app_artifact" ') and not commit.is_set():
            commit.set()
            deadline = time.monotonic() + 10
            # The worker's commit ends, or waits for a lock this delete holds.
            while not finished.wait(0.05) and not lock_waits():
                assert time.monotonic() < deadline, "the worker neither committed nor waited"
        return execute(sql, params, many, context)

    worker = threading.Thread(target=inspect)
    worker.start()
    assert written.wait(30)
    url = f"/api/v1/artifacts/{artifact.id}/" if target == "artifact" else f"/api/v1/versions/{artifact.version_id}/"
    with connection.execute_wrapper(commit_the_inspection_now):
        response = api_client.delete(url)
    worker.join()

    assert response.status_code == 204, response.content
    assert commit.is_set()
    assert outcome == ["artifact gone"]
    assert not Artifact.objects.exists()
    assert not ArtifactInspection.objects.exists()
    assert bucket_keys(bucket) == []


def test_a_version_for_a_model_deleted_meanwhile_is_refused_as_such(transactional_db, user):
    """The serializer has read the registered model; another request deletes it before the
    version is inserted. The write is refused with a message that says so, and leaves nothing."""
    from models_app import services
    from models_app.errors import Conflict
    from models_app.models import AuditEntry, Event, ModelVersion

    registered = services.create_registered_model(name="gone-meanwhile", user=user)
    RegisteredModel.objects.filter(pk=registered.pk).delete()
    audits, events = AuditEntry.objects.count(), Event.objects.count()

    with pytest.raises(Conflict, match="gone-meanwhile was deleted"):
        services.create_version(registered_model=registered, user=user, version="1")

    assert not ModelVersion.objects.exists()
    assert (AuditEntry.objects.count(), Event.objects.count()) == (audits, events)


READ_SESSIONS = 'SELECT "models_app_uploadsession"."id"'


def expired_upload_with_its_parts(api_client):
    session = start(api_client).json()
    parts = put_parts(session, CONTENT)
    UploadSession.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    return session, parts


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need a server database (CI runs PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_prune_uploads_leaves_an_expired_upload_its_client_is_completing(api_client, bucket, small_parts):
    """The client claims the expired session for completion after ``prune_uploads`` listed it as
    pending and before it aborts it: prune skips it, and the completion goes on to register the file."""
    session, parts = expired_upload_with_its_parts(api_client)
    claimed, resume, answers = threading.Event(), threading.Event(), []

    def pause_after_the_claim(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if sql.startswith('UPDATE "models_app_uploadsession"') and not claimed.is_set():
            claimed.set()
            assert resume.wait(30)
        return result

    def complete():
        try:
            with connection.execute_wrapper(pause_after_the_claim):
                answers.append(
                    api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")
                )
        finally:
            claimed.set()
            connection.close()

    completer = threading.Thread(target=complete)
    out = io.StringIO()
    with connection.execute_wrapper(right_after(READ_SESSIONS, lambda: (completer.start(), claimed.wait(30)))):
        call_command("prune_uploads", stdout=out)
    resume.set()
    completer.join()

    assert answers[0].status_code == 201, answers[0].content
    artifact = Artifact.objects.get()
    assert (UploadSession.objects.get().state, UploadSession.objects.get().artifact) == ("completed", artifact)
    assert bucket_keys(bucket) == [artifact.file.name]
    assert f"skipping upload {session['id']}: it is completing" in out.getvalue()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need a server database (CI runs PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_prune_uploads_leaves_an_expired_upload_completed_after_it_was_listed(api_client, bucket, small_parts):
    session, parts = expired_upload_with_its_parts(api_client)

    def complete():
        response = api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")
        assert response.status_code == 201, response.content

    out = io.StringIO()
    with connection.execute_wrapper(right_after(READ_SESSIONS, complete)):
        call_command("prune_uploads", stdout=out)

    artifact = Artifact.objects.get()
    assert (UploadSession.objects.get().state, UploadSession.objects.get().artifact) == ("completed", artifact)
    assert bucket_keys(bucket) == [artifact.file.name]
    assert f"skipping upload {session['id']}: it is completed" in out.getvalue()
    assert "0 expired upload(s)" in out.getvalue()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need a server database (CI runs PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_deleting_an_upload_completed_meanwhile_is_a_conflict(api_client, bucket, small_parts):
    """The DELETE read the session as pending; the completion commits before the DELETE writes."""
    session = start(api_client).json()
    parts = put_parts(session, CONTENT)

    def complete():
        response = api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")
        assert response.status_code == 201, response.content

    with connection.execute_wrapper(right_after(READ_SESSIONS, complete)):
        response = api_client.delete(f"/api/v1/uploads/{session['id']}/")

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "conflict"
    assert "completed" in response.json()["error"]["message"]
    artifact = Artifact.objects.get()
    assert (UploadSession.objects.get().state, UploadSession.objects.get().artifact) == ("completed", artifact)
    assert bucket_keys(bucket) == [artifact.file.name]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="threads need a server database (CI runs PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_completing_an_upload_deleted_meanwhile_is_a_conflict(api_client, bucket, small_parts):
    """The completion read the session as pending; the DELETE commits before the completion claims it."""
    session = start(api_client).json()
    parts = put_parts(session, CONTENT)

    def delete():
        assert api_client.delete(f"/api/v1/uploads/{session['id']}/").status_code == 204

    with connection.execute_wrapper(right_after(READ_SESSIONS, delete)):
        response = api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "conflict"
    assert UploadSession.objects.get().state == "aborted"
    assert not Artifact.objects.exists()
    assert open_multipart_uploads(bucket) == [] and bucket_keys(bucket) == []
