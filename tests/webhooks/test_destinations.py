"""Destinations are checked when the connection is made: internal addresses are refused and logged."""

import logging

import pytest
from django.core.exceptions import ValidationError

from models_app import services as registry
from webhooks import delivery as worker
from webhooks import transport
from webhooks.models import Delivery, DeliveryAttempt, Subscription

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd12:3456::1", "unique-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("100.64.0.1", "reserved"),
        ("93.184.215.14", ""),
        ("2606:4700::1111", ""),
    ],
)
def test_internal_addresses_are_refused(address, kind, settings):
    settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS = []
    assert transport.refusal(address) == kind


def test_the_allow_list_opens_internal_networks_but_never_multicast(settings):
    settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8", "224.0.0.0/4"]
    assert transport.refusal("10.1.2.3") == ""
    assert transport.refusal("192.168.0.1") == "private"
    assert transport.refusal("224.0.0.1") == "multicast"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "file:///etc/passwd",
        "http://10.0.0.1/hook",
        "http://[::1]:8000/",
        "http://u:p@example.com/",
    ],
)
def test_a_url_is_checked_when_saved(url, settings):
    settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS = []
    with pytest.raises(ValidationError):
        transport.validate_url(url)


def test_a_name_resolving_to_loopback_is_refused_at_connect_time(receiver, settings, caplog):
    """`localhost` passes the check on save (it is a name), yet resolves to 127.0.0.1: refused when
    the worker connects, so the receiver never hears of it."""
    settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS = []
    url = f"http://localhost:{receiver.port}/hook"
    Subscription(url=url).full_clean()
    Subscription.objects.create(url=url)
    registry.create_registered_model(name="a")
    with caplog.at_level(logging.WARNING, logger="webhooks.delivery"):
        worker.run_once()
    assert receiver.requests == []
    attempt = DeliveryAttempt.objects.get()
    assert attempt.outcome == "refused"
    assert "localhost resolves to" in attempt.error and "loopback" in attempt.error
    assert Delivery.objects.get().state == "pending"
    assert "loopback" in caplog.text


def test_a_private_address_saved_before_is_refused_at_connect_time(settings):
    """A subscription whose address was allowed when saved is refused once the allow-list no
    longer covers it (no connection is tried: the address is unroutable here)."""
    settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    Subscription.objects.create(url="http://10.255.255.1:81/hook")
    settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS = []
    registry.create_registered_model(name="a")
    worker.run_once()
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.outcome, attempt.status_code, attempt.address) == ("refused", None, "")
    assert "10.255.255.1 is a private address" in attempt.error or "private" in attempt.error


def test_a_redirect_to_a_link_local_address_is_not_followed(subscription, receiver, settings, caplog):
    settings.REGISTRY_WEBHOOK_RETRY_BASE_SECONDS = 3600
    receiver.answer(302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    registry.create_registered_model(name="a")
    with caplog.at_level(logging.WARNING, logger="webhooks.delivery"):
        worker.run_once()
    assert "not followed" in caplog.text
    assert len(receiver.requests) == 1
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.outcome, attempt.status_code) == ("redirect", 302)
    assert "169.254.169.254" in attempt.error and "not followed" in attempt.error
    assert Delivery.objects.get().state == "pending"  # a redirect is a failed attempt, retried later


def test_the_vetted_address_is_the_one_connected_to(receiver, webhook_settings, hooks_example_test):
    """One DNS lookup of the name per attempt: a second, different answer (DNS rebinding to an
    internal address) is never asked for. The request still names the host."""
    Subscription.objects.create(url=f"http://hooks.example.test:{receiver.port}/hook")
    registry.create_registered_model(name="a")
    worker.run_once()
    assert hooks_example_test == ["hooks.example.test"]
    assert DeliveryAttempt.objects.get().outcome == "success"
    assert DeliveryAttempt.objects.get().address == "127.0.0.1"
    assert receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{receiver.port}"


@pytest.fixture
def hooks_example_test(monkeypatch):
    """hooks.example.test resolves to 127.0.0.1 (and only the first time it is asked)."""
    lookups = []
    real = transport.socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if host == "hooks.example.test":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "10.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(transport.socket, "getaddrinfo", resolve)
    return lookups


def test_https_to_the_vetted_address_checks_the_certificate_against_the_name(
    tls_receiver, certificate, webhook_settings, hooks_example_test, monkeypatch
):
    """The connection goes to the checked address, yet TLS sends the URL's name (SNI) and the
    certificate must be valid for that name."""
    monkeypatch.setattr(transport.certifi, "where", lambda: certificate[0])
    Subscription.objects.create(url=f"https://hooks.example.test:{tls_receiver.port}/hook")
    registry.create_registered_model(name="a")
    worker.run_once()
    attempt = DeliveryAttempt.objects.get()
    assert (attempt.outcome, attempt.status_code, attempt.address) == ("success", 200, "127.0.0.1")
    assert tls_receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{tls_receiver.port}"
    assert hooks_example_test == ["hooks.example.test"]


def test_https_refuses_a_certificate_it_cannot_verify(tls_receiver, webhook_settings, hooks_example_test, settings):
    settings.REGISTRY_WEBHOOK_RETRY_BASE_SECONDS = 3600
    Subscription.objects.create(url=f"https://hooks.example.test:{tls_receiver.port}/hook")
    registry.create_registered_model(name="a")
    worker.run_once()
    attempt = DeliveryAttempt.objects.get()
    assert attempt.outcome == "connection_error" and "CERTIFICATE_VERIFY_FAILED" in attempt.error
    assert tls_receiver.requests == []


def test_a_url_with_an_impossible_port_is_refused_on_save_and_fails_cleanly_on_send(webhook_settings):
    with pytest.raises(ValidationError):
        transport.validate_url("http://hooks.example.com:99999/x")
    Subscription.objects.create(url="http://hooks.example.com:99999/x")
    registry.create_registered_model(name="a")
    worker.run_once()
    attempt = DeliveryAttempt.objects.first()
    assert attempt.outcome == "connection_error" and "99999" in attempt.error
