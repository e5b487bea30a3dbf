"""The delivery worker: fan events out to subscriptions, send them signed, retry, log.

``run_once`` is one pass (``manage.py deliver_webhooks`` loops over it). Guarantees:

- At least once: a delivery stays pending until the subscriber answers 2xx or its retries run
  out. Its id is the ``webhook-id`` of every attempt, so receivers can drop repeats.
- No two workers send the same delivery at once: the worker takes the delivery's row with
  ``SELECT ... FOR UPDATE SKIP LOCKED`` and keeps the lock while it sends, recording the result
  in the same transaction. A worker killed mid-send leaves the row as it was (pending, same id),
  and the next worker sends it again.
- In order per subscription and registered model: a delivery is only taken when no earlier
  event for the same subscription and model is still pending, so a later event waits while an
  earlier one is being retried.

SQLite has no row locks: there, run one worker, and the request is sent outside a transaction
(SQLite would otherwise hold its write lock, and every other writer, while the subscriber answers).
"""

import base64
import hashlib
import hmac
import json
import logging
from contextlib import nullcontext
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Exists, F, Max, OuterRef
from django.utils import timezone

from models_app.models import Event

from . import transport
from .models import Delivery, DeliveryAttempt, Subscription

logger = logging.getLogger(__name__)

USER_AGENT = "ModelRegistry-Webhooks/1"


# --- the message ------------------------------------------------------------------------------


def message_body(event):
    """The JSON body of every delivery of ``event``: the same bytes on every attempt."""
    envelope = {
        "id": f"evt_{event.uid.hex}",
        "type": event.type,
        "timestamp": event.created_at,
        "data": event.payload,
    }
    return json.dumps(envelope, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def sign(msg_id, timestamp, body, secrets):
    """The ``webhook-signature`` header (Standard Webhooks): ``v1,<base64 HMAC-SHA256 of
    "id.timestamp.body">`` per secret, separated by spaces."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    signatures = []
    for secret in secrets:
        key = base64.b64decode(secret.removeprefix("whsec_"))
        digest = hmac.new(key, signed, hashlib.sha256).digest()
        signatures.append("v1," + base64.b64encode(digest).decode())
    return " ".join(signatures)


def headers_for(delivery, body, now):
    timestamp = str(int(now.timestamp()))
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(delivery.webhook_id, timestamp, body, delivery.subscription.signing_secrets(now)),
    }


# --- fan-out ----------------------------------------------------------------------------------


def dispatch_events(limit=500):
    """Turn undispatched events into deliveries for the subscriptions that want them.

    Subscriptions that are switched off get their deliveries too (they wait until it is on
    again); a subscription only gets events written after it was created. The events' rows are
    locked (blocking, not skipped), so two workers dispatch one after the other and deliveries
    are made in event order. Returns how many events were dispatched.
    """
    with transaction.atomic():
        events = list(Event.objects.select_for_update().filter(dispatched_at__isnull=True).order_by("id")[:limit])
        if not events:
            return 0
        now = timezone.now()
        subscriptions = list(Subscription.objects.all())
        waits = _queue_waits(now)
        Delivery.objects.bulk_create(
            [
                Delivery(
                    subscription=sub,
                    event=event,
                    order_key=event.registered_model_id,
                    next_attempt_at=waits.get((sub.pk, event.registered_model_id), now),
                )
                for event in events
                for sub in subscriptions
                if sub.created_at <= event.created_at and sub.wants(event)
            ],
            ignore_conflicts=True,
        )
        Event.objects.filter(pk__in=[e.pk for e in events]).update(dispatched_at=now)
    return len(events)


def _queue_waits(now):
    """``{(subscription id, order key): time}`` of the queues whose first delivery waits for a
    retry: a delivery joining such a queue is not due before then either."""
    waiting = (
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__gt=now, order_key__isnull=False)
        .values_list("subscription_id", "order_key")
        .annotate(until=Max("next_attempt_at"))
    )
    return {(sub, key): until for sub, key, until in waiting}


def _postpone_queue(delivery):
    """The later deliveries of a queue whose first one waits for a retry wait as long.

    They could not be sent before it anyway; with their own time in the past, every pass of the
    worker would look at each of them (a subscriber down for an hour can have thousands) only to
    find an earlier one pending.
    """
    if delivery.order_key is None:
        return
    Delivery.objects.filter(
        subscription_id=delivery.subscription_id,
        order_key=delivery.order_key,
        state=Delivery.State.PENDING,
        event_id__gt=delivery.event_id,
        next_attempt_at__lt=delivery.next_attempt_at,
    ).update(next_attempt_at=delivery.next_attempt_at)


# --- sending ----------------------------------------------------------------------------------


def due_deliveries(now):
    """Pending deliveries whose time has come, of active subscriptions, each the first pending
    one of its subscription and registered model."""
    earlier = Delivery.objects.filter(
        subscription=OuterRef("subscription"),
        order_key=OuterRef("order_key"),
        state=Delivery.State.PENDING,
        event_id__lt=OuterRef("event_id"),
    )
    return (
        Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now, subscription__is_active=True)
        .exclude(Exists(earlier))
        .order_by("next_attempt_at", "event_id")
    )


def backoff(failures):
    """Seconds before the next try after ``failures`` failed attempts: doubling, capped."""
    base, cap = settings.REGISTRY_WEBHOOK_RETRY_BASE_SECONDS, settings.REGISTRY_WEBHOOK_RETRY_MAX_SECONDS
    return min(base * 2 ** (failures - 1), cap)


def _locking():
    """The transaction a delivery is sent in: the row lock is held until the result is saved."""
    return transaction.atomic() if connection.features.has_select_for_update_skip_locked else nullcontext()


def deliver_next():
    """Send the next due delivery, if any; returns it (with its new state) or None."""
    with _locking():
        now = timezone.now()
        delivery = (
            due_deliveries(now)
            .select_for_update(skip_locked=True, of=("self",))
            .select_related("subscription", "event")
            .first()
        )
        if delivery is None:
            return None
        body = message_body(delivery.event)
        response = transport.post(
            delivery.subscription.url,
            body,
            headers_for(delivery, body, now),
            timeout=settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS,
        )
        record_attempt(delivery, response)
    return delivery


def record_attempt(delivery, response):
    """Log one attempt and move the delivery on: delivered, retried later, or given up; count the
    subscription's consecutive failures and switch it off when they reach the limit."""
    now = timezone.now()
    subscription = delivery.subscription
    with transaction.atomic():
        delivery.attempts += 1
        DeliveryAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            at=now,
            url=subscription.url[:2000],
            address=response.address,
            outcome=response.outcome,
            status_code=response.status,
            latency_ms=response.latency_ms,
            error=response.error,
            response_excerpt=response.body.decode("utf-8", "replace"),
        )
        delivery.last_status_code, delivery.last_error = response.status, response.error
        if response.outcome == DeliveryAttempt.Outcome.SUCCESS:
            delivery.state, delivery.delivered_at = Delivery.State.DELIVERED, now
            Subscription.objects.filter(pk=subscription.pk, consecutive_failures__gt=0).update(consecutive_failures=0)
        else:
            _failed(delivery, subscription, response, now)
        delivery.save(
            update_fields=[
                "attempts",
                "failures",
                "state",
                "delivered_at",
                "next_attempt_at",
                "last_status_code",
                "last_error",
            ]
        )


def _failed(delivery, subscription, response, now):
    # A refused address or a redirect may be someone probing the network through us.
    suspicious = response.outcome in (DeliveryAttempt.Outcome.REFUSED, DeliveryAttempt.Outcome.REDIRECT)
    log = logger.warning if suspicious else logger.info
    log("Webhook %s to %s failed: %s", delivery.webhook_id, subscription.url, response.error)
    delivery.failures += 1
    if delivery.failures >= settings.REGISTRY_WEBHOOK_MAX_ATTEMPTS:
        delivery.state = Delivery.State.FAILED
    else:
        delivery.next_attempt_at = now + timedelta(seconds=backoff(delivery.failures))
        _postpone_queue(delivery)
    Subscription.objects.filter(pk=subscription.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    subscription.refresh_from_db(fields=["consecutive_failures", "is_active"])
    limit = settings.REGISTRY_WEBHOOK_DISABLE_AFTER_FAILURES
    if subscription.is_active and subscription.consecutive_failures >= limit:
        reason = (
            f"Switched off at {now:%Y-%m-%d %H:%M:%S} UTC after {subscription.consecutive_failures} consecutive "
            f"failed deliveries; the last: {response.error or response.outcome}"
        )
        Subscription.objects.filter(pk=subscription.pk).update(is_active=False, disabled_reason=reason[:2000])
        logger.warning("Webhook subscription %s switched off: %s", subscription.pk, reason)


# --- housekeeping -----------------------------------------------------------------------------


def prune(now=None):
    """Forget finished deliveries and dispatched events older than the retention period.

    Pending deliveries are kept (a switched-off subscription catches up when it is on again), and
    so are the events they carry.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.REGISTRY_WEBHOOK_RETENTION_DAYS)
    Delivery.objects.filter(created_at__lt=cutoff).exclude(state=Delivery.State.PENDING).delete()
    pending = Delivery.objects.filter(event=OuterRef("pk"), state=Delivery.State.PENDING)
    Event.objects.filter(dispatched_at__lt=cutoff).exclude(Exists(pending)).delete()


def run_once(limit=100):
    """One pass of the worker: dispatch new events, then send up to ``limit`` due deliveries.
    Returns how many deliveries were attempted."""
    dispatch_events()
    sent = 0
    while sent < limit and deliver_next() is not None:
        sent += 1
    return sent
