"""S3 that accepts connections and never answers: /readyz answers at once, a transfer fails with a
503 and Retry-After, and once storage is known to be down the next transfers fail without waiting
on it again. No answer names the storage's internal address."""

import socket
import threading
import time

import pytest

from models_app.models import Artifact
from tests.conftest import s3_storages

pytestmark = pytest.mark.django_db


@pytest.fixture
def short_timeouts(monkeypatch):
    """One attempt of a second per S3 call, so the first failure comes quickly."""
    monkeypatch.setenv("S3_READ_TIMEOUT", "1")
    monkeypatch.setenv("S3_MAX_ATTEMPTS", "1")


@pytest.fixture
def silent_s3(settings, monkeypatch):
    """A TCP server that accepts every connection and never sends a byte; the registry's artifacts
    point at it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(100)
    accepted, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    settings.STORAGES = s3_storages(endpoint, "silent")

    yield endpoint, accepted
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def test_readyz_answers_503_quickly_when_storage_is_silent(client, silent_s3):
    endpoint, _ = silent_s3
    started = time.monotonic()
    response = client.get("/readyz")
    # The probe makes one attempt of a second; the bound here is generous for a loaded machine.
    assert time.monotonic() - started < 5
    assert response.status_code == 503 and response["Retry-After"]
    assert response.json()["checks"]["storage"] == "unavailable"
    assert endpoint not in response.content.decode()


def test_once_storage_went_silent_further_uploads_fail_without_asking_it(api_client, short_timeouts, silent_s3):
    endpoint, accepted = silent_s3
    url = "/api/v1/artifacts/upload/m.bin?registered_model=m&version=1&precision=int8"
    first = api_client.generic("PUT", url, b"model bytes", content_type="application/octet-stream")
    assert first.status_code == 503 and first["Retry-After"]
    assert endpoint not in first.content.decode() and "127.0.0.1" not in first.content.decode()
    connections = len(accepted)
    assert connections >= 1
    second = api_client.generic("PUT", url, b"model bytes", content_type="application/octet-stream")
    assert second.status_code == 503 and second.json()["error"]["code"] == "storage_unavailable"
    time.sleep(0.5)
    assert len(accepted) == connections  # the second upload did not even connect
    assert not Artifact.objects.exists()
