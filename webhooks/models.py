"""Webhook subscriptions, their deliveries and the log of every attempt.

Events come from the registry's outbox (``models_app.Event``); the worker fans each event out
into one ``Delivery`` per matching subscription and sends them (``webhooks.delivery``).
"""

import base64
import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from models_app.events import EVENT_TYPES
from models_app.models import Event, RegisteredModel

from .transport import validate_url

PING = "webhook.ping"


def new_secret():
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def validate_event_types(value):
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValidationError("A list of event types, or an empty list for all of them.")
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValidationError(f"Unknown event type(s): {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}.")


class Subscription(models.Model):
    """A URL that receives the registry's events, signed with the subscription's secret.

    ``event_types`` empty means every type. ``registered_model`` limits the events to one model;
    it is no database foreign key, so the filter (and the subscription) outlive the model and
    its ``registered_model.deleted`` event still reaches the subscriber. After a secret rotation
    the previous secret keeps signing too (both signatures are sent) until
    ``previous_secret_expires_at``. A subscription whose deliveries keep failing is switched off
    (``is_active``) with ``disabled_reason``; its deliveries wait and resume when it is on again.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=2000, validators=[validate_url])
    secret = models.CharField(max_length=100, default=new_secret, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    event_types = models.JSONField(default=list, blank=True, validators=[validate_event_types])
    registered_model = models.ForeignKey(
        RegisteredModel,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    is_active = models.BooleanField(default=True)
    disabled_reason = models.TextField(blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]
        permissions = [("manage_webhooks", "Can manage webhook subscriptions and see their deliveries")]

    def __str__(self):
        return self.name or self.url

    def signing_secrets(self, now=None):
        """The secrets that sign a message now: the current one, and the previous one while the
        rotation's overlap lasts."""
        now = now or timezone.now()
        keys = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            keys.append(self.previous_secret)
        return keys

    def wants(self, event):
        """Whether ``event`` is one this subscription asked for (pings always are)."""
        if event.type == PING:
            return True
        if self.event_types and event.type not in self.event_types:
            return False
        return self.registered_model_id is None or self.registered_model_id == event.registered_model_id


class Delivery(models.Model):
    """One event for one subscription, until the subscriber took it (or the retries ran out).

    The id is the ``webhook-id`` of every attempt, so receivers can drop repeats. Deliveries of
    one subscription with the same ``order_key`` (the registered model) go out in event order: a
    later one waits while an earlier one is pending (``webhooks.delivery``).
    """

    class State(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        FAILED = "failed"

    # What the delivery log shows of a delivery's progress (API and admin).
    PROGRESS_FIELDS = (
        "state",
        "attempts",
        "failures",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    )

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    order_key = models.UUIDField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # Failed attempts since the delivery was (re)queued; the retry limit counts these.
    failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-event_id"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["subscription", "event"], name="one_delivery_per_event")]
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(state="pending"), name="delivery_due"),
            models.Index(
                fields=["subscription", "order_key", "event"], condition=Q(state="pending"), name="delivery_queue"
            ),
        ]

    def __str__(self):
        return f"{self.event.type} -> {self.subscription} ({self.state})"

    @property
    def webhook_id(self):
        return f"msg_{self.id.hex}"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: what the subscriber answered, or why nothing arrived."""

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        HTTP_ERROR = "http_error"
        REDIRECT = "redirect"
        TIMEOUT = "timeout"
        REFUSED = "refused"
        CONNECTION_ERROR = "connection_error"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField(default=timezone.now)
    url = models.CharField(max_length=2000)
    address = models.CharField(max_length=64, blank=True)
    outcome = models.CharField(max_length=32, choices=Outcome.choices)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)
    response_excerpt = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["delivery", "-at"], name="attempt_by_delivery")]

    def __str__(self):
        return f"#{self.number} {self.outcome} {self.status_code or ''}".strip()
