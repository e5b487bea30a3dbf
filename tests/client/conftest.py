"""The client against a live registry: pytest-django's live_server (a real HTTP server in a
thread), artifacts on the moto S3 server the suite starts, a user with an API token. The
presigned URLs the registry hands out point at that S3 server, so the client's direct uploads
and redirected downloads really go to it."""

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
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


class StorageProxy:
    """A real HTTP server in front of the S3 server, whose address the registry signs part URLs
    for (``S3_PUBLIC_ENDPOINT_URL``): it records the number of every part PUT through it, and
    answers 403 instead of forwarding once ``cut_after`` parts got through, as a connection that
    drops would end the push."""

    def __init__(self, upstream):
        self.upstream, self.received, self.cut_after = upstream, [], None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                number = int(parse_qs(urlsplit(self.path).query)["partNumber"][0])
                if proxy.cut_after is not None and len(proxy.received) >= proxy.cut_after:
                    self.send_response(403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                # The signature covers the host the client addressed: forward it unchanged.
                answer = requests.put(
                    proxy.upstream + self.path, data=body, headers={"Host": self.headers["Host"]}, timeout=60
                )
                proxy.received.append(number)
                self.send_response(answer.status_code)
                for name in ("ETag", "Content-Type"):
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def storage_proxy(s3_endpoint, settings):
    proxy = StorageProxy(s3_endpoint)
    settings.S3_PUBLIC_ENDPOINT_URL = proxy.url
    yield proxy
    proxy.close()


class Interrupted(Exception):
    """Raised from a progress callback to cut a transfer off part way, as Ctrl-C would."""


def interrupt_after(limit):
    def progress(done, total):
        if done >= limit:
            raise Interrupted(done)

    return progress


def interrupted_push(registry, path, after, **fields):
    """Push ``path`` one part at a time and stop it once ``after`` bytes are sent, as a killed
    push would stop."""
    registry.parallel = 1
    with pytest.raises(Interrupted):
        registry.push(path, progress=interrupt_after(after), **fields)
