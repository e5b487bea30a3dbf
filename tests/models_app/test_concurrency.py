"""Two clients racing for the same variant: the database constraint decides, over real HTTP."""

import threading

import pytest
import requests
from rest_framework.authtoken.models import Token

from models_app.models import Artifact, RegisteredModel
from tests.conftest import bucket_keys


@pytest.mark.django_db(transaction=True)
def test_two_clients_registering_the_same_variant_get_one_201_and_one_409(live_server, user, bucket):
    token = Token.objects.create(user=user).key
    barrier = threading.Barrier(2)
    statuses = []

    def register(content):
        barrier.wait()
        response = requests.post(
            f"{live_server.url}/api/v1/artifacts/",
            headers={"Authorization": f"Token {token}"},
            data={"registered_model": "racer", "version": "1", "precision": "INT8"},
            files={"file": ("m.zip", content)},
            timeout=60,
        )
        statuses.append((response.status_code, response.json()))

    threads = [threading.Thread(target=register, args=(bytes([i]) * 200_000,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(code for code, _ in statuses) == [201, 409]
    assert [body["error"]["code"] for code, body in statuses if code == 409] == ["conflict"]
    assert RegisteredModel.objects.count() == 1
    assert Artifact.objects.count() == 1
    # The loser's object was removed: only the winner's file is in the bucket.
    assert bucket_keys(bucket) == [Artifact.objects.get().file.name]
