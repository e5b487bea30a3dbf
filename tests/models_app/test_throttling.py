"""Password and token guessing is limited per client address and per account (django-axes)."""

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db
LIMIT = 10


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="right-password", is_staff=True)


def log_in(client, url, username, password, ip="10.0.0.1"):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_a_client_is_locked_out_after_too_many_wrong_passwords(client, alice, url):
    for attempt in range(LIMIT - 1):
        assert log_in(client, url, f"nobody{attempt}", "wrong").status_code == 200
    response = log_in(client, url, "nobody", "wrong")
    assert response.status_code == 429
    assert int(response["Retry-After"]) == 15 * 60
    assert "Too many failed sign-ins" in response.content.decode()
    # Locked out, the right password does not get in either; another client still does.
    assert log_in(client, url, "alice", "right-password").status_code == 429
    assert log_in(client, url, "alice", "right-password", ip="10.0.0.2").status_code == 302


def test_an_account_is_locked_out_after_too_many_wrong_passwords_from_many_clients(client, alice):
    for attempt in range(LIMIT):
        log_in(client, "/accounts/login/", "alice", "wrong", ip=f"10.0.1.{attempt}")
    response = log_in(client, "/accounts/login/", "alice", "right-password", ip="10.0.2.1")
    assert response.status_code == 429 and response["Retry-After"]


def test_a_client_guessing_tokens_gets_a_json_429_with_retry_after(client, alice):
    token = Token.objects.create(user=alice).key
    url = "/api/v1/registered-models/"
    for attempt in range(LIMIT - 1):
        response = client.get(url, HTTP_AUTHORIZATION=f"Token guess{attempt}", REMOTE_ADDR="10.0.0.9")
        assert response.status_code == 401
    response = client.get(url, HTTP_AUTHORIZATION="Token guess", REMOTE_ADDR="10.0.0.9")
    assert response.status_code == 429
    assert int(response["Retry-After"]) == 15 * 60
    assert response.json()["error"]["code"] == "throttled"
    # Locked out, even a valid token is refused; other clients go on.
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="10.0.0.9").status_code == 429
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="10.0.0.8").status_code == 200


def test_a_locked_out_clients_guesses_are_refused_without_being_counted(client, alice):
    from axes.models import AccessAttempt

    for attempt in range(LIMIT):
        client.get("/api/v1/registered-models/", HTTP_AUTHORIZATION=f"Token guess{attempt}", REMOTE_ADDR="10.0.0.6")
    response = client.get("/api/v1/registered-models/", HTTP_AUTHORIZATION="Token again", REMOTE_ADDR="10.0.0.6")
    assert response.status_code == 429
    assert AccessAttempt.objects.get(ip_address="10.0.0.6").failures_since_start == LIMIT


def test_a_valid_token_of_an_inactive_account_is_refused_and_counted(client, alice):
    from axes.models import AccessAttempt

    token = Token.objects.create(user=alice).key
    alice.is_active = False
    alice.save()
    response = client.get("/api/v1/registered-models/", HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="10.0.0.5")
    assert response.status_code == 401
    assert AccessAttempt.objects.get(ip_address="10.0.0.5").failures_since_start == 1


def test_a_token_and_the_clients_failures_are_read_in_one_query(
    client, alice, model_version, django_assert_num_queries
):
    token = Token.objects.create(user=alice).key
    url = f"/api/v1/registered-models/{model_version.registered_model.name}/versions/1/"
    client.get(url, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="10.0.0.4")  # prepares its statements
    # 1. the token, its user and the client's failures in the cool-off  2. the version
    with django_assert_num_queries(2):
        response = client.get(url, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="10.0.0.4")
    assert response.status_code == 200 and response.json()["version"] == "1"


def test_requests_without_a_token_are_not_counted(client):
    for _ in range(LIMIT + 2):
        assert client.get("/api/v1/registered-models/", REMOTE_ADDR="10.0.0.7").status_code == 200


def test_behind_a_proxy_the_client_is_the_address_the_proxy_appended(client, alice, settings):
    settings.REGISTRY_CLIENT_IP_HEADER = "X-Forwarded-For"
    for attempt in range(LIMIT):
        log_in(client, "/accounts/login/", f"nobody{attempt}", "wrong", ip="10.9.9.9")
    # The proxy's own address is not locked out: each client counts on its own.
    response = client.post(
        "/accounts/login/",
        {"username": "alice", "password": "right-password"},
        REMOTE_ADDR="10.9.9.9",
        HTTP_X_FORWARDED_FOR="spoofed, 192.0.2.7",
    )
    assert response.status_code == 302


@pytest.mark.parametrize("ip", ["10.0.0.3", "2001:db8::7", "::ffff:10.0.0.3"])
def test_the_prepared_token_query_counts_the_clients_failures(client, alice, ip):
    """The token query is compiled once (models_app.throttling.TokenStatement); its address and
    cool-off are filled in per request, IPv6 included."""
    from models_app import throttling

    token = Token.objects.create(user=alice).key
    url = "/api/v1/registered-models/"
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR=ip).status_code == 200
    assert isinstance(next(iter(throttling._token_statement.values())), throttling.TokenStatement)
    for attempt in range(LIMIT):
        client.get(url, HTTP_AUTHORIZATION=f"Token guess{attempt}", REMOTE_ADDR=ip)
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR=ip).status_code == 429
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="10.0.0.2").status_code == 200


def test_failures_older_than_the_cool_off_no_longer_lock_a_token_out(client, alice):
    import datetime

    from axes.models import AccessAttempt

    token = Token.objects.create(user=alice).key
    url = "/api/v1/registered-models/"
    for attempt in range(LIMIT):
        client.get(url, HTTP_AUTHORIZATION=f"Token guess{attempt}", REMOTE_ADDR="10.0.0.11")
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="10.0.0.11").status_code == 429
    AccessAttempt.objects.filter(ip_address="10.0.0.11").update(
        attempt_time=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=16)
    )
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}", REMOTE_ADDR="10.0.0.11").status_code == 200


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_token_statement_the_database_refuses_gives_way_to_the_orms_query(client, alice, monkeypatch):
    from models_app import throttling

    token = Token.objects.create(user=alice).key
    url = "/api/v1/registered-models/"
    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    key, statement = next((k, s) for k, s in throttling._token_statement.items() if s is not None)
    sql = statement.sql.replace('"authtoken_token"."key"', "no_such_column", 1)
    monkeypatch.setitem(throttling._token_statement, key, throttling.TokenStatement(sql, statement.sources))

    assert client.get(url, HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert throttling._token_statement[key] is None
    assert client.get(url, HTTP_AUTHORIZATION="Token wrong").status_code == 401
