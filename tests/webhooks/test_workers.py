"""Workers that crash or run side by side: at least once, never twice at the same time, in order."""

import os
import signal
import subprocess
import sys
import threading

import pytest
from django.db import connection

from models_app import services as registry
from tests.processes import ROOT, database_url
from webhooks import delivery as worker
from webhooks.models import Delivery


def drain():
    while worker.run_once() > 0:
        pass


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_is_followed_by_one_resend_with_the_same_id(receiver, subscription):
    registry.create_registered_model(name="a")
    registry.create_registered_model(name="b")
    receiver.block = threading.Event()  # the receiver holds its answer: the worker waits mid-send
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "REGISTRY_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
        "REGISTRY_WEBHOOK_TIMEOUT_SECONDS": "60",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "deliver_webhooks"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert receiver.received.wait(60), "the worker never sent anything"
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    first = receiver.ids()[0]
    receiver.block.set()
    receiver.block = None
    assert Delivery.objects.get(pk=first.removeprefix("msg_")).state == "pending"  # nothing was recorded

    drain()
    drain()
    ids = receiver.ids()
    assert ids[:2] == [first, first]  # sent again, with the same webhook-id
    assert len(ids) == 3 and len(set(ids)) == 2  # and the other delivery exactly once
    assert set(Delivery.objects.values_list("state", flat=True)) == {"delivered"}


@pytest.mark.skipif("os.environ.get('DATABASE_URL', '').startswith('sqlite') or not os.environ.get('DATABASE_URL')")
@pytest.mark.django_db(transaction=True)
def test_two_workers_never_send_a_delivery_twice_nor_out_of_order(receiver, subscription):
    """With a slow receiver, two workers take turns on the row locks: each delivery goes out
    once, and a model's events keep their order although both workers are busy."""
    model = registry.create_registered_model(name="a")
    for n in range(3):
        registry.update_registered_model(model, fields={"description": f"change {n}"})
    registry.create_registered_model(name="b")
    for _ in range(5):
        receiver.answer(200, b"ok", delay=0.3)
    errors = []

    def run():
        try:
            drain()
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    ids = receiver.ids()
    assert len(ids) == 5 and len(set(ids)) == 5
    import json

    bodies = [json.loads(r["body"]) for r in receiver.requests]
    of_a = [
        b["data"]["changes"].get("description", [None, None])[1]
        for b in bodies
        if b["data"]["registered_model"]["name"] == "a"
    ]
    assert of_a == [None, "change 0", "change 1", "change 2"]
