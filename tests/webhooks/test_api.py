"""/api/v1/webhooks/: subscriptions, secrets, the delivery log, redelivery, pings, permissions."""

import pytest
from standardwebhooks import Webhook

from models_app import services as registry
from webhooks import delivery as worker
from webhooks.models import Delivery, Subscription

pytestmark = pytest.mark.django_db

SUBS = "/api/v1/webhooks/subscriptions/"
DELIVERIES = "/api/v1/webhooks/deliveries/"


def create(client, **fields):
    response = client.post(SUBS, {"url": "https://hooks.example.com/registry", **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_the_secret_is_shown_once_at_creation(manager_client, manager):
    body = create(manager_client, name="CI", event_types=["alias.moved"])
    assert body["secret"].startswith("whsec_")
    assert body["created_by"] == manager.username and body["is_active"] is True
    subscription = Subscription.objects.get()
    assert subscription.secret == body["secret"] and subscription.event_types == ["alias.moved"]
    detail = manager_client.get(f"{SUBS}{body['id']}/").json()
    assert "secret" not in detail and body["secret"] not in str(manager_client.get(SUBS).content)


def test_a_bad_subscription_is_refused_with_the_fields_at_fault(manager_client, settings):
    settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS = []
    for fields, field in [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://169.254.169.254/latest"}, "url"),
        ({"event_types": ["model.exploded"]}, "event_types"),
        ({"registered_model": "no-such-model"}, "registered_model"),
    ]:
        response = manager_client.post(SUBS, {"url": "https://hooks.example.com/", **fields}, format="json")
        assert response.status_code == 400, (fields, response.content)
        error = response.json()["error"]
        assert error["code"] == "validation_error" and field in error["fields"]
    assert not Subscription.objects.exists()


def test_webhooks_need_the_manage_permission(api_client, anon_client, manager_client):
    created = create(manager_client)
    for client, expected in ((api_client, 403), (anon_client, 401)):
        assert client.get(SUBS).status_code in (expected, 403)
        assert client.post(SUBS, {"url": "https://example.com/"}, format="json").status_code in (expected, 403)
        assert client.get(DELIVERIES).status_code in (expected, 403)
        assert client.post(f"{SUBS}{created['id']}/ping/").status_code in (expected, 403)
    assert Subscription.objects.count() == 1


def test_a_rotation_returns_the_new_secret_and_keeps_the_old_one_for_the_overlap(manager_client):
    created = create(manager_client)
    response = manager_client.post(f"{SUBS}{created['id']}/rotate-secret/", {"overlap_seconds": 600}, format="json")
    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert response.json()["secret"] == subscription.secret != created["secret"]
    assert subscription.signing_secrets() == [subscription.secret, created["secret"]]
    assert manager_client.get(f"{SUBS}{created['id']}/").json()["previous_secret_expires_at"]


def test_switching_a_subscription_back_on_clears_why_it_was_off(manager_client):
    created = create(manager_client)
    Subscription.objects.update(
        is_active=False, disabled_reason="Switched off after 20 failures", consecutive_failures=20
    )
    response = manager_client.patch(f"{SUBS}{created['id']}/", {"is_active": True}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["is_active"], body["disabled_reason"], body["consecutive_failures"]) == (True, "", 0)


def test_the_delivery_log_shows_every_attempt_and_redelivers(manager_client, receiver, webhook_settings):
    created = create(manager_client, url=receiver.url)
    receiver.answer(500, b"boom")
    registry.create_registered_model(name="a")
    while worker.run_once():
        pass
    listed = manager_client.get(DELIVERIES, {"subscription": created["id"]}).json()
    assert listed["count"] == 1
    row = listed["results"][0]
    assert (row["event_type"], row["registered_model"], row["state"], row["attempts"]) == (
        "registered_model.created",
        "a",
        "delivered",
        2,
    )
    detail = manager_client.get(f"{DELIVERIES}{row['id']}/").json()
    assert [(a["number"], a["outcome"], a["status_code"], a["response_excerpt"]) for a in detail["attempt_log"]] == [
        (2, "success", 200, "ok"),
        (1, "http_error", 500, "boom"),
    ]
    assert all(a["latency_ms"] is not None for a in detail["attempt_log"])
    assert detail["payload"]["registered_model"]["name"] == "a"

    response = manager_client.post(f"{DELIVERIES}{row['id']}/redeliver/")
    assert response.status_code == 202 and response.json()["state"] == "pending"
    worker.run_once()
    assert receiver.ids()[-1] == row["webhook_id"] and len(receiver.requests) == 3


def test_a_ping_is_queued_signed_and_logged(manager_client, receiver, webhook_settings):
    created = create(manager_client, url=receiver.url)
    response = manager_client.post(f"{SUBS}{created['id']}/ping/")
    assert response.status_code == 202 and response.json()["event_type"] == "webhook.ping"
    worker.run_once()
    body = Webhook(created["secret"]).verify(receiver.requests[0]["body"], receiver.requests[0]["headers"])
    assert body["type"] == "webhook.ping"
    assert Delivery.objects.get().state == "delivered"


def test_the_event_types_are_listed_with_an_example_each(manager_client):
    body = manager_client.get("/api/v1/webhooks/event-types/").json()
    types = [entry["type"] for entry in body]
    assert "alias.moved" in types and "geti_import.failed" in types and "webhook.ping" in types
    moved = next(entry for entry in body if entry["type"] == "alias.moved")
    assert moved["example"]["data"]["from_version"]["version"] == "1"


def test_the_schema_documents_the_payloads(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    components = schema["components"]["schemas"]
    for name in ("WebhookEvent", "WebhookAliasEvent", "WebhookArtifactEvent", "WebhookGetiImportEvent"):
        assert name in components
    assert "/api/v1/webhooks/subscriptions/{id}/rotate-secret/" in schema["paths"]


def test_list_queries_do_not_grow(manager_client, receiver, webhook_settings, django_assert_num_queries):
    for n in range(3):
        create(manager_client, url=receiver.url, name=f"s{n}")
        registry.create_registered_model(name=f"m{n}")
    while worker.run_once():
        pass
    # page of subscriptions with their model filter and creator joined (it holds all: no count)
    with django_assert_num_queries(1):
        assert manager_client.get(SUBS).json()["count"] == 3
    # count, first page of subscriptions
    with django_assert_num_queries(2):
        assert manager_client.get(f"{SUBS}?page_size=2").json()["count"] == 3
    # count, page of deliveries with their events joined
    with django_assert_num_queries(2):
        assert manager_client.get(f"{DELIVERIES}?page_size=2").json()["count"] > 3


def test_a_filter_outlives_its_deleted_model(manager_client, receiver, webhook_settings):
    model = registry.create_registered_model(name="a")
    created, model_id = create(manager_client, url=receiver.url, registered_model="a"), str(model.pk)
    registry.delete_registered_model(model)
    while worker.run_once():
        pass
    assert receiver.types() == ["registered_model.deleted"]
    body = manager_client.get(f"{SUBS}{created['id']}/").json()
    assert (body["registered_model"], body["registered_model_id"]) == (None, model_id)
    assert manager_client.get(SUBS).status_code == 200
