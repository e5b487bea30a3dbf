"""Two clients racing for the same variant: the database constraint decides, over real HTTP."""

import threading
import time

import pytest
import requests
from django.db import IntegrityError, connection, transaction
from rest_framework.authtoken.models import Token

from models_app.inspection.service import inspect_artifact
from models_app.models import Artifact, ArtifactInspection, RegisteredModel
from tests.conftest import bucket_keys


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
