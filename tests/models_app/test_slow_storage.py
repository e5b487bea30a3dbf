"""S3 that answers, but slowly: slower than the one-second /readyz probe waits, well within the
timeouts of real calls. Deletes still succeed, and a /readyz that gives up on such a storage does
not make the registry take it for down."""

import socket
import threading
import time
from urllib.parse import urlparse

import pytest

from models_app import storage
from models_app.models import Artifact
from tests.conftest import bucket_keys, s3_storages

pytestmark = pytest.mark.django_db

DELAY = 1.5  # over the probe's one-second read timeout, far under S3_READ_TIMEOUT


@pytest.fixture
def slow_s3(settings, s3_endpoint, s3_bucket_name):
    """A proxy in front of the test S3 that holds every piece of an answer for ``DELAY`` seconds;
    the registry's artifacts point at it from here on."""
    upstream = urlparse(s3_endpoint)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop, sockets = threading.Event(), []

    def pump(source, target, delay):
        try:
            while data := source.recv(65536):
                time.sleep(delay)
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def accept():
        while not stop.is_set():
            try:
                client, _ = server.accept()
            except TimeoutError:
                continue
            remote = socket.create_connection((upstream.hostname, upstream.port))
            sockets.extend([client, remote])
            threading.Thread(target=pump, args=(client, remote, 0), daemon=True).start()
            threading.Thread(target=pump, args=(remote, client, DELAY), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    settings.STORAGES = s3_storages(f"http://127.0.0.1:{server.getsockname()[1]}", s3_bucket_name)
    yield
    stop.set()
    thread.join()
    for sock in sockets:
        sock.close()
    server.close()


def test_a_delete_waits_for_a_slow_storage_instead_of_answering_503(
    api_client, artifact, bucket, slow_s3, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.delete(f"/api/v1/artifacts/{artifact.id}/")
    assert response.status_code == 204, response.content
    assert not Artifact.objects.exists()
    assert bucket_keys(bucket) == []
    assert not storage.storage_is_down()


def test_a_readyz_giving_up_on_a_slow_storage_does_not_fail_the_transfers_after_it(
    client, api_client, artifact, bucket, slow_s3
):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["storage"] == "unavailable"
    assert not storage.storage_is_down()
    download = api_client.get(f"/api/v1/artifacts/{artifact.id}/download/")
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"x" * 1000
