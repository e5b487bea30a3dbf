"""Writes to subscriptions and deliveries, shared by the API and the admin."""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from models_app.events import actor_of
from models_app.models import Event

from .models import PING, Delivery, Subscription, new_secret


def _validated(subscription):
    subscription.full_clean(exclude=["created_by"])
    return subscription


def create_subscription(*, user=None, **fields):
    """A new subscription with a fresh secret; the caller shows the secret once."""
    subscription = _validated(Subscription(created_by=user if user and user.is_authenticated else None, **fields))
    subscription.save(force_insert=True)
    return subscription


def update_subscription(subscription, *, fields):
    """Change a subscription; switching it on again resumes it (``resume``)."""
    resumed = fields.get("is_active") and not subscription.is_active
    for key, value in fields.items():
        setattr(subscription, key, value)
    _validated(subscription)
    with transaction.atomic():
        subscription.save()
        if resumed:
            resume(subscription)
    return subscription


def resume(subscription):
    """A subscription switched on again starts with no failures and no reason for being off,
    and its waiting deliveries go out at once, in order."""
    subscription.consecutive_failures, subscription.disabled_reason = 0, ""
    Subscription.objects.filter(pk=subscription.pk).update(consecutive_failures=0, disabled_reason="")
    subscription.deliveries.filter(state=Delivery.State.PENDING).update(next_attempt_at=timezone.now())


def rotate_secret(subscription, *, overlap_seconds):
    """Give the subscription a new secret; the old one keeps signing (both signatures are sent)
    for ``overlap_seconds``, so receivers can switch without dropping a message. Returns the
    new secret, which is shown once."""
    subscription.previous_secret = subscription.secret if overlap_seconds > 0 else ""
    subscription.previous_secret_expires_at = (
        timezone.now() + timedelta(seconds=overlap_seconds) if overlap_seconds > 0 else None
    )
    subscription.secret = new_secret()
    subscription.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "updated_at"])
    return subscription.secret


def ping(subscription, *, user=None):
    """Queue a ``webhook.ping`` for this subscription alone; the worker sends it like any
    delivery (same checks of the destination, same log). Returns the Delivery."""
    with transaction.atomic():
        now = timezone.now()
        event = Event.objects.create(
            type=PING,
            payload={
                "registered_model": None,
                "subscription": {"id": str(subscription.pk), "name": subscription.name},
                "actor": actor_of(user),
            },
            dispatched_at=now,
        )
        return Delivery.objects.create(subscription=subscription, event=event, next_attempt_at=now)


def redeliver(delivery):
    """Queue a delivery again (same ``webhook-id``) with a fresh set of retries."""
    delivery.state, delivery.failures, delivery.next_attempt_at = Delivery.State.PENDING, 0, timezone.now()
    delivery.save(update_fields=["state", "failures", "next_attempt_at"])
    return delivery
