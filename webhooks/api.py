"""/api/v1/webhooks/: subscriptions, their delivery log, redelivery, pings and the event types.

Every endpoint, reads included, needs the ``webhooks.manage_webhooks`` permission: a
subscription's URL and its deliveries' payloads are not for everyone who may read the registry.
"""

import django_filters
from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import BasePermission
from rest_framework.response import Response

from models_app.models import RegisteredModel

from . import services
from .models import Delivery, DeliveryAttempt, Subscription
from .payloads import ALL_TYPES, WEBHOOK_EVENT, example


class CanManageWebhooks(BasePermission):
    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm("webhooks.manage_webhooks"))


class SubscriptionSerializer(serializers.ModelSerializer):
    registered_model = serializers.SlugRelatedField(
        slug_field="name",
        queryset=RegisteredModel.objects.all(),
        allow_null=True,
        required=False,
        help_text="Only events of this registered model (by name); null for every model.",
    )
    registered_model_id = serializers.UUIDField(read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True, default=None)

    class Meta:
        model = Subscription
        fields = [
            "id",
            "name",
            "url",
            "event_types",
            "registered_model",
            "registered_model_id",
            "is_active",
            "disabled_reason",
            "consecutive_failures",
            "previous_secret_expires_at",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["disabled_reason", "consecutive_failures", "previous_secret_expires_at"]
        extra_kwargs = {"event_types": {"help_text": "Event types to receive; empty for all of them."}}


class NewSubscriptionSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret (whsec_...). Shown only here; rotate it if it is lost."
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]


class RotateSecretSerializer(serializers.Serializer):
    overlap_seconds = serializers.IntegerField(
        min_value=0,
        max_value=30 * 24 * 3600,
        required=False,
        help_text="How long the old secret keeps signing beside the new one "
        "(default REGISTRY_WEBHOOK_SECRET_OVERLAP_SECONDS).",
    )


class RotatedSecretSerializer(serializers.Serializer):
    secret = serializers.CharField()
    previous_secret_expires_at = serializers.DateTimeField(allow_null=True)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "at",
            "url",
            "address",
            "outcome",
            "status_code",
            "latency_ms",
            "error",
            "response_excerpt",
        ]


class DeliverySerializer(serializers.ModelSerializer):
    webhook_id = serializers.CharField(read_only=True)
    event_id = serializers.SerializerMethodField()
    event_type = serializers.CharField(source="event.type")
    registered_model = serializers.CharField(source="event.registered_model_name")
    event_at = serializers.DateTimeField(source="event.created_at")

    class Meta:
        model = Delivery
        fields = [
            "id",
            "webhook_id",
            "subscription",
            "event_id",
            "event_type",
            "registered_model",
            "event_at",
            *Delivery.PROGRESS_FIELDS,
        ]

    def get_event_id(self, delivery) -> str:
        return f"evt_{delivery.event.uid.hex}"


class DeliveryDetailSerializer(DeliverySerializer):
    payload = serializers.JSONField(source="event.payload", help_text="The event's data")
    attempt_log = DeliveryAttemptSerializer(source="attempts_log", many=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DeliverySerializer.Meta.fields, "payload", "attempt_log"]


class SubscriptionViewSet(viewsets.ModelViewSet):
    """Webhook subscriptions. The secret is in the answer to the POST that creates one, and to a
    rotation, never again. PATCH ``is_active: true`` switches a subscription back on after it
    was switched off for failing; its waiting deliveries then go out in order."""

    permission_classes = [CanManageWebhooks]
    serializer_class = SubscriptionSerializer
    filterset_fields = ["is_active"]
    search_fields = ["name", "url"]
    ordering_fields = ["created_at", "name"]
    ordering = ["created_at", "id"]

    def get_queryset(self):
        return Subscription.objects.select_related("registered_model", "created_by")

    @extend_schema(responses={201: NewSubscriptionSerializer})
    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription = services.create_subscription(user=request.user, **serializer.validated_data)
        return Response(NewSubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        services.update_subscription(serializer.instance, fields=serializer.validated_data)

    @extend_schema(request=RotateSecretSerializer, responses=RotatedSecretSerializer)
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        """A new secret; the old one keeps signing beside it for ``overlap_seconds``."""
        subscription = self.get_object()
        serializer = RotateSecretSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        overlap = serializer.validated_data.get("overlap_seconds", settings.REGISTRY_WEBHOOK_SECRET_OVERLAP_SECONDS)
        secret = services.rotate_secret(subscription, overlap_seconds=overlap)
        return Response(
            {"secret": secret, "previous_secret_expires_at": subscription.previous_secret_expires_at},
        )

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def ping(self, request, pk=None):
        """Queue a ``webhook.ping`` delivery to this subscription; the worker sends it."""
        delivery = services.ping(self.get_object(), user=request.user)
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class DeliveryFilterSet(django_filters.FilterSet):
    event_type = django_filters.CharFilter(field_name="event__type")
    registered_model = django_filters.CharFilter(field_name="event__registered_model_name")

    class Meta:
        model = Delivery
        fields = ["subscription", "state", "event_type", "registered_model"]


class DeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The delivery log: one row per event and subscription, with every attempt in the detail."""

    permission_classes = [CanManageWebhooks]
    filterset_class = DeliveryFilterSet
    search_fields = None
    ordering_fields = ["created_at", "next_attempt_at"]
    ordering = ["-created_at", "-event_id"]

    def get_queryset(self):
        queryset = Delivery.objects.select_related("event")
        if self.action != "list":
            queryset = queryset.prefetch_related("attempts_log")
        return queryset

    def get_serializer_class(self):
        return DeliverySerializer if self.action == "list" else DeliveryDetailSerializer

    @extend_schema(request=None, responses={202: DeliverySerializer})
    @action(detail=True, methods=["post"])
    def redeliver(self, request, pk=None):
        """Send the delivery again, with the same ``webhook-id`` and a fresh set of retries."""
        delivery = services.redeliver(self.get_object())
        return Response(DeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class EventTypeViewSet(viewsets.ViewSet):
    """The event types a subscription can ask for, each with an example body."""

    permission_classes = [CanManageWebhooks]

    @extend_schema(
        responses=inline_serializer(
            "WebhookEventType",
            {"type": serializers.CharField(), "description": serializers.CharField(), "example": WEBHOOK_EVENT},
            many=True,
        ),
        examples=[
            OpenApiExample(t, value=[{"type": t, "description": d, "example": example(t)}], response_only=True)
            for t, d in ALL_TYPES.items()
        ],
    )
    def list(self, request):
        return Response([{"type": t, "description": d, "example": example(t)} for t, d in ALL_TYPES.items()])
