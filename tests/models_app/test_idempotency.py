"""``Idempotency-Key`` on the create requests: a retry gets the first answer, another request
under the same key a 422, and concurrent requests with one key create one thing."""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from models_app.models import Alias, AliasEvent, Artifact, IdempotencyKey, ModelVersion, RegisteredModel, UploadSession
from tests.conftest import bucket_keys, open_multipart_uploads

pytestmark = pytest.mark.django_db


def post(client, url, data, key, **kwargs):
    return client.post(url, data, format=kwargs.pop("format", "json"), HTTP_IDEMPOTENCY_KEY=key, **kwargs)


def abort_sessions(client, bucket):
    """Abort the direct uploads a test started, so no open multipart upload outlives it."""
    for session in UploadSession.objects.all():
        assert client.delete(f"/api/v1/uploads/{session.id}/").status_code == 204
    assert open_multipart_uploads(bucket) == []


def test_a_retry_gets_the_first_answer_and_creates_nothing_more(api_client):
    first = post(api_client, "/api/v1/registered-models/", {"name": "m", "description": "d"}, "k1")
    assert first.status_code == 201
    again = post(api_client, "/api/v1/registered-models/", {"name": "m", "description": "d"}, "k1")
    assert again.status_code == 201 and again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert RegisteredModel.objects.count() == 1


def test_the_same_key_with_another_payload_is_a_422(api_client):
    assert post(api_client, "/api/v1/registered-models/", {"name": "m"}, "k1").status_code == 201
    response = post(api_client, "/api/v1/registered-models/", {"name": "other"}, "k1")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["m"]


def test_keys_belong_to_their_user(api_client, django_user_model):
    from tests.conftest import ALL_MODEL_PERMS, grant

    other = APIClient()
    other.force_authenticate(grant(django_user_model.objects.create_user("bob"), *ALL_MODEL_PERMS))
    assert post(api_client, "/api/v1/registered-models/", {"name": "a"}, "k1").status_code == 201
    assert post(other, "/api/v1/registered-models/", {"name": "b"}, "k1").status_code == 201
    assert RegisteredModel.objects.count() == 2


def test_versions_and_aliases_are_replayed_too(api_client):
    RegisteredModel.objects.create(name="m")
    for _ in range(2):
        assert post(api_client, "/api/v1/versions/", {"registered_model": "m", "version": "1"}, "v").status_code == 201
    assert ModelVersion.objects.count() == 1
    body = {"name": "staging", "version": "1"}
    first = post(api_client, "/api/v1/registered-models/m/aliases/", body, "a")
    again = post(api_client, "/api/v1/registered-models/m/aliases/", body, "a")
    assert (first.status_code, again.status_code) == (201, 201) and again.json() == first.json()
    assert Alias.objects.count() == 1 and AliasEvent.objects.count() == 1


def test_an_upload_retried_with_its_key_is_stored_once(api_client, bucket):
    url = "/api/v1/artifacts/upload/model.bin?registered_model=m&version=1&precision=INT8"
    responses = [
        api_client.generic(
            "PUT", url, b"model bytes", content_type="application/octet-stream", HTTP_IDEMPOTENCY_KEY="u"
        )
        for _ in range(2)
    ]
    assert [r.status_code for r in responses] == [201, 201]
    assert responses[1].json() == responses[0].json() and responses[1]["Location"] == responses[0]["Location"]
    assert Artifact.objects.count() == 1 and len(bucket_keys(bucket)) == 1
    other = api_client.generic(
        "PUT", url, b"other bytes!", content_type="application/octet-stream", HTTP_IDEMPOTENCY_KEY="u"
    )
    assert other.status_code == 422


def test_a_direct_upload_session_is_started_once(api_client, bucket):
    body = {"registered_model": "m", "version": "1", "filename": "big.bin", "size": 6 * 1024 * 1024}
    first = post(api_client, "/api/v1/uploads/", body, "d")
    again = post(api_client, "/api/v1/uploads/", body, "d")
    assert first.status_code == 201, first.content
    assert again.json() == first.json() and UploadSession.objects.count() == 1
    abort_sessions(api_client, bucket)


def test_a_refused_request_is_replayed_as_refused(api_client):
    assert post(api_client, "/api/v1/registered-models/", {"name": "bad/name"}, "k").status_code == 400
    response = post(api_client, "/api/v1/registered-models/", {"name": "bad/name"}, "k")
    assert response.status_code == 400 and response["Idempotent-Replayed"] == "true"


def test_requests_without_a_key_are_not_kept(api_client):
    api_client.post("/api/v1/registered-models/", {"name": "m"}, format="json")
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_create_one_thing(user, bucket):
    """Upload sessions have no natural key: without Idempotency-Key each request starts one."""
    body = {"registered_model": "m", "version": "1", "filename": "big.bin", "size": 6 * 1024 * 1024}
    clients = []
    for _ in range(8):
        client = APIClient()
        client.force_authenticate(user)
        clients.append(client)
    barrier, statuses = threading.Barrier(len(clients)), []

    def create(client):
        try:
            barrier.wait(timeout=10)
            statuses.append(post(client, "/api/v1/uploads/", body, "same").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert UploadSession.objects.count() == 1
    # One ran; the others got its answer, or were told it was still running.
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
    assert post(clients[0], "/api/v1/uploads/", body, "same").status_code == 201
    abort_sessions(clients[0], bucket)


def test_prune_uploads_forgets_keys_older_than_a_day(api_client):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    post(api_client, "/api/v1/registered-models/", {"name": "old"}, "old")
    post(api_client, "/api/v1/registered-models/", {"name": "new"}, "new")
    IdempotencyKey.objects.filter(key="old").update(created_at=timezone.now() - timedelta(hours=25))
    call_command("prune_uploads", stdout=open("/dev/null", "w"))
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]
