"""The client against a live registry: pytest-django's live_server (a real HTTP server in a
thread), artifacts on the moto S3 server the suite starts, a user with an API token. The
presigned URLs the registry hands out point at that S3 server, so the client's direct uploads
and redirected downloads really go to it."""

import os

import pytest
from django.core.signals import request_started
from registry_client import Registry
from rest_framework.authtoken.models import Token

MiB = 1024 * 1024


@pytest.fixture(autouse=True)
def client_home(tmp_path, monkeypatch):
    """The client's config file and upload state in the test's folder; no REGISTRY_* from outside."""
    monkeypatch.setenv("REGISTRY_CONFIG", str(tmp_path / "config" / "config.json"))
    monkeypatch.setenv("REGISTRY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("REGISTRY_URL", raising=False)
    monkeypatch.delenv("REGISTRY_TOKEN", raising=False)
    return tmp_path


@pytest.fixture
def token(user):
    return Token.objects.create(user=user).key


@pytest.fixture
def registry(live_server, token, bucket):
    with Registry(live_server.url, token) as client:
        yield client


@pytest.fixture
def served():
    """Every request the registry receives, as (method, path, query, Range header), in order."""
    seen = []

    def record(sender, environ=None, **kwargs):
        seen.append(
            (
                environ["REQUEST_METHOD"],
                environ["PATH_INFO"],
                environ.get("QUERY_STRING", ""),
                environ.get("HTTP_RANGE"),
            )
        )

    request_started.connect(record, weak=False)
    yield seen
    request_started.disconnect(record)


@pytest.fixture
def model_file(tmp_path):
    def make(size, name="detector.bin"):
        path = tmp_path / "src" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(os.urandom(size))
        return path

    return make


class Interrupted(Exception):
    """Raised from a progress callback to cut a transfer off part way, as Ctrl-C would."""


def interrupt_after(limit):
    def progress(done, total):
        if done >= limit:
            raise Interrupted(done)

    return progress
