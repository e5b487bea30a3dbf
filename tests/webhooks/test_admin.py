"""Webhooks in the admin: the secret once, switching back on, the delivery log, redelivery."""

import pytest

from models_app import services as registry
from webhooks import delivery as worker
from webhooks.models import Delivery, Subscription

pytestmark = pytest.mark.django_db


def test_adding_a_subscription_shows_its_secret_once(admin_client, webhook_settings):
    response = admin_client.post(
        "/admin/webhooks/subscription/add/",
        {"name": "CI", "url": "https://hooks.example.com/x", "event_types": "[]", "is_active": "on"},
        follow=True,
    )
    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert subscription.secret in response.content.decode()
    assert subscription.created_by.username == "admin"
    assert (
        subscription.secret
        not in admin_client.get(f"/admin/webhooks/subscription/{subscription.pk}/change/").content.decode()
    )


def test_switching_back_on_in_the_admin_resumes(admin_client, subscription):
    Subscription.objects.update(is_active=False, disabled_reason="failing", consecutive_failures=9)
    response = admin_client.post(
        f"/admin/webhooks/subscription/{subscription.pk}/change/",
        {"name": "CI", "url": subscription.url, "event_types": "[]", "is_active": "on"},
    )
    assert response.status_code == 302, response.content
    subscription.refresh_from_db()
    assert (subscription.is_active, subscription.disabled_reason, subscription.consecutive_failures) == (True, "", 0)


def test_the_delivery_log_lists_and_redelivers(admin_client, subscription, receiver, django_assert_max_num_queries):
    receiver.answer(500, b"boom")
    for name in ("a", "b", "c"):
        registry.create_registered_model(name=name)
    while worker.run_once():
        pass
    with django_assert_max_num_queries(12):
        response = admin_client.get("/admin/webhooks/delivery/")
    assert response.status_code == 200 and "registered_model.created" in response.content.decode()
    delivery = Delivery.objects.order_by("event_id").first()
    detail = admin_client.get(f"/admin/webhooks/delivery/{delivery.pk}/change/").content.decode()
    assert "boom" in detail and "http_error" in detail
    response = admin_client.post(
        "/admin/webhooks/delivery/", {"action": "redeliver", "_selected_action": [str(delivery.pk)]}
    )
    assert response.status_code == 302
    assert Delivery.objects.get(pk=delivery.pk).state == "pending"


def test_the_admin_needs_the_manage_permission(client, django_user_model):
    from tests.conftest import grant

    staff = grant(django_user_model.objects.create_user("staff", password="pw", is_staff=True), "view_subscription")
    client.force_login(staff)
    assert client.get("/admin/webhooks/subscription/").status_code == 403
