"""Delivery to a real HTTP receiver: signatures, retries, order, switching off, crashes."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from models_app import services as registry
from models_app.models import Event, RegisteredModel
from webhooks import delivery as worker
from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt, Subscription

pytestmark = pytest.mark.django_db


def new_model(name="person-detection", user=None):
    return registry.create_registered_model(name=name, user=user)


def drain():
    """Run the worker until nothing is due."""
    total = 0
    while (sent := worker.run_once()) > 0:
        total += sent
    return total


def verify(secret, request):
    return Webhook(secret).verify(request["body"], request["headers"])


def test_a_delivery_is_signed_per_standard_webhooks(subscription, receiver):
    model = new_model()
    assert drain() == 1
    request = receiver.requests[0]
    body = verify(subscription.secret, request)  # the reference implementation accepts it
    assert body["type"] == "registered_model.created"
    assert body["data"]["registered_model"] == {"id": str(model.pk), "name": "person-detection"}
    assert body["id"] == f"evt_{Event.objects.get().uid.hex}"
    delivery = Delivery.objects.get()
    assert request["headers"]["webhook-id"] == delivery.webhook_id
    assert request["headers"]["Content-Type"] == "application/json"
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 1, 200)
    with pytest.raises(WebhookVerificationError):
        verify("whsec_" + "A" * 43 + "=", request)


def test_after_a_rotation_both_secrets_sign_until_the_overlap_ends(subscription, receiver):
    old = subscription.secret
    new = services.rotate_secret(subscription, overlap_seconds=3600)
    assert new != old and new.startswith("whsec_")
    new_model("a")
    drain()
    request = receiver.requests[-1]
    assert len(request["headers"]["webhook-signature"].split(" ")) == 2
    verify(old, request)
    verify(new, request)

    Subscription.objects.filter(pk=subscription.pk).update(previous_secret_expires_at=timezone.now())
    new_model("b")
    drain()
    request = receiver.requests[-1]
    verify(new, request)
    with pytest.raises(WebhookVerificationError):
        verify(old, request)


def test_a_500_is_retried_with_the_same_webhook_id(subscription, receiver):
    receiver.answer(500, b"database down")
    receiver.answer(503)
    new_model()
    drain()
    assert len(set(receiver.ids())) == 1 and len(receiver.requests) == 3
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts) == ("delivered", 3)
    log = list(delivery.attempts_log.order_by("number").values_list("number", "outcome", "status_code"))
    assert log == [(1, "http_error", 500), (2, "http_error", 503), (3, "success", 200)]
    assert delivery.attempts_log.get(number=1).response_excerpt == "database down"
    assert Subscription.objects.get().consecutive_failures == 0


def test_retries_wait_longer_each_time_up_to_the_limit(subscription, receiver, settings):
    settings.REGISTRY_WEBHOOK_RETRY_BASE_SECONDS = 30
    receiver.answer(500)
    new_model()
    before = timezone.now()
    worker.run_once()
    delivery = Delivery.objects.get()
    assert delivery.state == "pending"
    assert before + timedelta(seconds=29) < delivery.next_attempt_at < timezone.now() + timedelta(seconds=31)
    assert worker.run_once() == 0  # not due yet
    assert [worker.backoff(n) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    settings.REGISTRY_WEBHOOK_RETRY_MAX_SECONDS = 100
    assert worker.backoff(4) == 100


def test_a_delivery_gives_up_after_the_last_attempt(subscription, receiver):
    for _ in range(5):
        receiver.answer(500)
    new_model()
    drain()
    delivery = Delivery.objects.get()
    assert (delivery.state, delivery.attempts, len(receiver.requests)) == ("failed", 3, 3)


def test_a_timeout_is_a_failed_attempt_and_is_retried(subscription, receiver, settings):
    settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS = 1
    receiver.answer(200, b"too late", delay=3)
    new_model()
    drain()
    delivery = Delivery.objects.get()
    assert delivery.state == "delivered"
    outcomes = list(delivery.attempts_log.order_by("number").values_list("outcome", flat=True))
    assert outcomes[0] == "timeout" and outcomes[-1] == "success"
    assert "No answer within 1 s" in delivery.attempts_log.get(number=1).error
    assert len(set(receiver.ids())) == 1


def test_a_later_event_of_a_model_waits_while_an_earlier_one_is_retried(subscription, receiver, settings):
    settings.REGISTRY_WEBHOOK_RETRY_BASE_SECONDS = 3600
    receiver.answer(500)
    model = new_model("a")
    registry.update_registered_model(model, fields={"description": "changed"})
    new_model("b")
    drain()
    # a's first event failed and waits an hour; a's second waits behind it; b is not held up.
    assert receiver.types() == ["registered_model.created", "registered_model.created"]
    assert [json.loads(r["body"])["data"]["registered_model"]["name"] for r in receiver.requests] == ["a", "b"]
    pending = Delivery.objects.filter(state="pending").order_by("event_id")
    assert [d.event.type for d in pending] == ["registered_model.created", "registered_model.updated"]

    Delivery.objects.filter(state="pending").update(next_attempt_at=timezone.now())
    drain()
    names = [
        (json.loads(r["body"])["type"], json.loads(r["body"])["data"]["registered_model"]["name"])
        for r in receiver.requests
    ]
    assert names[2:] == [("registered_model.created", "a"), ("registered_model.updated", "a")]


def test_a_subscription_that_keeps_failing_is_switched_off_and_resumes_when_switched_on(subscription, receiver):
    for _ in range(5):
        receiver.answer(500)
    new_model("a")
    new_model("b")
    drain()
    subscription.refresh_from_db()
    assert not subscription.is_active
    assert (
        "5 consecutive failed deliveries" in subscription.disabled_reason and "HTTP 500" in subscription.disabled_reason
    )
    assert len(receiver.requests) == 5
    new_model("c")  # queued while switched off
    assert drain() == 0

    services.update_subscription(subscription, fields={"is_active": True})
    subscription.refresh_from_db()
    assert (subscription.consecutive_failures, subscription.disabled_reason) == (0, "")
    drain()
    assert Delivery.objects.filter(state="delivered").count() == 2  # b (retried) and c
    assert [json.loads(r["body"])["data"]["registered_model"]["name"] for r in receiver.requests[5:]] == ["b", "c"]


def test_only_the_wanted_events_of_the_wanted_model_are_delivered(subscription, receiver):
    model = new_model("a")
    new_model("b")
    drain()
    receiver.requests.clear()
    services.update_subscription(
        subscription, fields={"event_types": ["registered_model.updated"], "registered_model": model}
    )
    registry.update_registered_model(model, fields={"description": "x"})
    registry.update_registered_model(RegisteredModel.objects.get(name="b"), fields={"description": "x"})
    registry.delete_registered_model(model)
    drain()
    assert receiver.types() == ["registered_model.updated"]
    assert json.loads(receiver.requests[0]["body"])["data"]["registered_model"]["name"] == "a"


def test_a_subscription_gets_no_events_from_before_it_existed(receiver, webhook_settings):
    new_model("a")
    services.create_subscription(url=receiver.url)
    new_model("b")
    drain()
    assert [json.loads(r["body"])["data"]["registered_model"]["name"] for r in receiver.requests] == ["b"]


def test_a_redelivery_sends_the_same_webhook_id_again(subscription, receiver):
    new_model()
    drain()
    delivery = Delivery.objects.get()
    services.redeliver(delivery)
    drain()
    assert receiver.ids() == [delivery.webhook_id, delivery.webhook_id]
    assert Delivery.objects.get().attempts == 2


def test_a_ping_is_delivered_to_its_subscription_alone(subscription, receiver, webhook_settings):
    other = services.create_subscription(url=receiver.url.replace("/hook", "/other"))
    services.ping(subscription)
    drain()
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    body = verify(subscription.secret, receiver.requests[0])
    assert body["type"] == "webhook.ping" and body["data"]["subscription"]["id"] == str(subscription.pk)
    assert not Delivery.objects.filter(subscription=other).exists()


def test_the_response_is_read_up_to_the_limit(subscription, receiver):
    receiver.answer(200, b"x" * 100_000)
    new_model()
    drain()
    attempt = DeliveryAttempt.objects.get()
    assert attempt.outcome == "success" and len(attempt.response_excerpt) == 4096


def test_old_finished_deliveries_and_events_are_pruned(subscription, receiver, settings):
    new_model()
    drain()
    worker.prune(now=timezone.now() + timedelta(days=settings.REGISTRY_WEBHOOK_RETENTION_DAYS + 1))
    assert not Delivery.objects.exists() and not Event.objects.exists()


def test_a_refused_write_sends_nothing(subscription, receiver, upload):
    assert upload(b"model").status_code == 201
    assert upload(b"again").status_code == 409  # rolled back: no row, no event
    drain()
    assert receiver.types() == ["registered_model.created", "version.created", "artifact.created"]


def test_a_queue_waiting_for_a_retry_is_not_due_before_it(subscription, receiver, settings):
    """The later deliveries of a model wait as long as its first one, also those dispatched
    later, so an idle worker does not look at them on every pass."""
    settings.REGISTRY_WEBHOOK_RETRY_BASE_SECONDS = 3600
    receiver.answer(500)
    model = new_model("a")
    registry.update_registered_model(model, fields={"description": "one"})
    worker.run_once()
    registry.update_registered_model(model, fields={"description": "two"})
    worker.run_once()
    first, *later = Delivery.objects.order_by("event_id")
    assert first.failures == 1 and len(later) == 2
    assert {d.next_attempt_at for d in later} == {first.next_attempt_at}
    assert not worker.due_deliveries(timezone.now()).exists()
