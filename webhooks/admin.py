"""Webhooks in the admin: subscriptions (secret shown once, rotation, ping) and the delivery log
with redelivery. Only users with ``webhooks.manage_webhooks`` see any of it."""

from django.conf import settings
from django.contrib import admin, messages
from django.db import models, transaction

from . import services
from .models import Delivery, DeliveryAttempt, Subscription


class ManageWebhooksPermission:
    def _allowed(self, request):
        return request.user.has_perm("webhooks.manage_webhooks")

    def has_module_permission(self, request):
        return self._allowed(request)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request)

    def has_add_permission(self, request, *args):
        return self._allowed(request)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request)


@admin.register(Subscription)
class SubscriptionAdmin(ManageWebhooksPermission, admin.ModelAdmin):
    list_display = ["__str__", "url", "is_active", "consecutive_failures", "disabled_reason", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "url"]
    list_select_related = ["registered_model", "created_by"]
    raw_id_fields = ["registered_model"]
    fields = [
        "name",
        "url",
        "event_types",
        "registered_model",
        "is_active",
        "disabled_reason",
        "consecutive_failures",
        "previous_secret_expires_at",
        "created_by",
        "created_at",
    ]
    readonly_fields = [
        "disabled_reason",
        "consecutive_failures",
        "previous_secret_expires_at",
        "created_by",
        "created_at",
    ]
    actions = ["rotate_secret", "send_ping"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            super().save_model(request, obj, form, change)
            messages.warning(request, f"Signing secret of {obj}: {obj.secret} (copy it now; it is not shown again).")
            return
        was_active = Subscription.objects.filter(pk=obj.pk).values_list("is_active", flat=True).first()
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if obj.is_active and not was_active:
                services.resume(obj)

    @admin.action(description="Rotate the signing secret (the old one signs for the overlap period too)")
    def rotate_secret(self, request, queryset):
        for subscription in queryset:
            secret = services.rotate_secret(
                subscription, overlap_seconds=settings.REGISTRY_WEBHOOK_SECRET_OVERLAP_SECONDS
            )
            messages.warning(request, f"New signing secret of {subscription}: {secret} (shown once).")

    @admin.action(description="Send a ping")
    def send_ping(self, request, queryset):
        for subscription in queryset:
            services.ping(subscription, user=request.user)
        messages.success(request, f"Queued {queryset.count()} ping(s); see the deliveries.")


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "at", "outcome", "status_code", "latency_ms", "address", "error", "response_excerpt"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(ManageWebhooksPermission, admin.ModelAdmin):
    list_display = [
        "event_type",
        "registered_model",
        "subscription",
        "state",
        "attempts",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
    ]
    list_filter = ["state", "event__type", "subscription"]
    search_fields = ["event__registered_model_name", "last_error"]
    list_select_related = ["event", "subscription"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "id",
        "subscription",
        "event_type",
        "registered_model",
        "payload",
        *Delivery.PROGRESS_FIELDS,
    ]
    exclude = ["event", "order_key"]
    inlines = [DeliveryAttemptInline]
    actions = ["redeliver"]

    @admin.display(description="Event", ordering="event__type")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.display(description="Registered model", ordering="event__registered_model_name")
    def registered_model(self, delivery):
        return delivery.event.registered_model_name or "—"

    @admin.display(description="Payload")
    def payload(self, delivery):
        return delivery.event.payload

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Redeliver (same webhook-id)", permissions=["view"])
    def redeliver(self, request, queryset):
        for delivery in queryset:
            services.redeliver(delivery)
        messages.success(request, f"Queued {queryset.count()} delivery(ies) again.")
