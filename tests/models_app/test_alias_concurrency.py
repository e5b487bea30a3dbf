"""Two clients moving the same alias at the same moment.

Each client runs in its own thread with its own database connection, so the two requests really
are concurrent transactions; the alias row lock (and the unique constraint, when the alias is
new) must make them take turns. Runs on PostgreSQL in CI and on SQLite by default.
"""

import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from models_app import services
from models_app.models import Alias, AliasEvent, RegisteredModel

ALIASES = "/api/v1/registered-models/person-detection/aliases/"


@pytest.fixture(autouse=True)
def meet_at_the_alias_row(monkeypatch):
    """Make both transactions reach the alias lookup at the same moment, so neither can finish
    before the other starts: both are then inside their transaction, and on PostgreSQL both ask
    for the row lock (or both insert a new alias) together. SQLite lets only one write
    transaction in at a time, so there the clients are serialised before this point and waiting
    here would only stall the first one."""
    if not connection.features.has_select_for_update:
        return
    barrier, seen = threading.Barrier(2), threading.local()
    real = services._locked_alias

    def locked_alias(registered_model, name):
        if not getattr(seen, "waited", False):
            seen.waited = True
            barrier.wait(timeout=10)
        return real(registered_model, name)

    monkeypatch.setattr(services, "_locked_alias", locked_alias)


@pytest.fixture
def clients(user):
    def make():
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make(), make()


def move_at_once(clients, targets):
    barrier = threading.Barrier(len(clients))
    responses = [None] * len(clients)

    def move(index):
        try:
            barrier.wait(timeout=10)
            responses[index] = clients[index].put(f"{ALIASES}staging/", {"version": targets[index]}, format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=move, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a client is stuck (deadlock?)"
    return responses


def chain(events):
    """Oldest first: (from, to) per event, each starting where the one before ended."""
    steps = [(e.from_version_label, e.to_version_label) for e in reversed(events)]
    for before, after in zip(steps, steps[1:]):
        assert after[0] == before[1], steps
    return steps


@pytest.fixture
def model_with_versions(db):
    registered = RegisteredModel.objects.create(name="person-detection")
    for label in ("1", "2", "3"):
        registered.versions.create(version=label)
    return registered


@pytest.mark.django_db(transaction=True)
def test_two_clients_moving_an_alias_at_once_both_land_in_order(clients, model_with_versions, caplog):
    Alias.objects.create(
        registered_model=model_with_versions, name="staging", version=model_with_versions.versions.get(version="1")
    )
    AliasEvent.objects.create(registered_model=model_with_versions, alias="staging", action="set", to_version_label="1")
    responses = move_at_once(clients, ["2", "3"])
    assert sorted(r.status_code for r in responses) == [200, 200], [r.content for r in responses]
    events = list(AliasEvent.objects.order_by("-at", "-id"))
    assert [e.action for e in events] == ["move", "move", "set"]
    steps = chain(events)
    assert Alias.objects.get().version.version == steps[-1][1]
    assert {steps[1][1], steps[2][1]} == {"2", "3"}
    assert "created concurrently" not in caplog.text  # the row lock, not a retry, ordered them


@pytest.mark.django_db(transaction=True)
def test_two_clients_creating_the_same_alias_at_once_make_one_alias_and_two_entries(
    clients, model_with_versions, caplog
):
    responses = move_at_once(clients, ["1", "2"])
    assert sorted(r.status_code for r in responses) == [200, 201], [r.content for r in responses]
    assert Alias.objects.count() == 1
    events = list(AliasEvent.objects.order_by("-at", "-id"))
    assert [e.action for e in events] == ["move", "set"]
    steps = chain(events)
    assert Alias.objects.get().version.version == steps[-1][1]
    if connection.features.has_select_for_update:
        # Both inserted; the unique constraint made the loser move the winner's row.
        assert "created concurrently" in caplog.text
