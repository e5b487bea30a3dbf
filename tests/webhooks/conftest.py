"""A real HTTP receiver on loopback for webhook tests, and the settings that let webhooks reach it."""

import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import grant
from tests.geti_fake import _self_signed_cert


class Receiver:
    """A threaded http.server on 127.0.0.1 that records every request and answers from a script.

    ``answers`` is a list of ``(status, body, headers, delay_seconds)``; once it is used up every
    request gets 200. ``block`` (an Event) holds answers until it is set.
    """

    def __init__(self, tls=None):
        self.requests = []
        self.answers = []
        self.received = threading.Event()
        self.block = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                receiver.received.set()
                if receiver.block is not None:
                    receiver.block.wait(30)
                status, text, headers, delay = receiver.answers.pop(0) if receiver.answers else (200, b"ok", {}, 0)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(text)))
                    self.end_headers()
                    self.wfile.write(text)
                except OSError:
                    pass  # the client gave up (timeout, killed worker)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        if tls:  # (certificate file, key file): serve HTTPS
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, status, body=b"", headers=None, delay=0):
        self.answers.append((status, body, headers or {}, delay))

    def ids(self):
        return [r["headers"]["webhook-id"] for r in self.requests]

    def types(self):
        import json

        return [json.loads(r["body"])["type"] for r in self.requests]

    def close(self):
        if self.block is not None:
            self.block.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def webhook_settings(settings):
    """Loopback allowed (the receiver), immediate retries, small limits."""
    settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    settings.REGISTRY_WEBHOOK_RETRY_BASE_SECONDS = 0
    settings.REGISTRY_WEBHOOK_MAX_ATTEMPTS = 3
    settings.REGISTRY_WEBHOOK_DISABLE_AFTER_FAILURES = 5
    settings.REGISTRY_WEBHOOK_TIMEOUT_SECONDS = 2
    return settings


@pytest.fixture
def manager(django_user_model):
    """A user with the webhooks permission, and the registry's write permissions."""
    from tests.conftest import ALL_MODEL_PERMS

    return grant(django_user_model.objects.create_user("hooker", password="pw"), "manage_webhooks", *ALL_MODEL_PERMS)


@pytest.fixture
def manager_client(manager):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(manager)
    return client


@pytest.fixture
def subscription(receiver, webhook_settings, db):
    from webhooks.services import create_subscription

    return create_subscription(name="CI", url=receiver.url)


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for the name hooks.example.test only (no address in it):
    (certificate file, key file)."""
    cert, key = _self_signed_cert(tmp_path, names=["hooks.example.test"], addresses=[])
    return str(cert), str(key)


@pytest.fixture
def tls_receiver(certificate):
    server = Receiver(tls=certificate)
    yield server
    server.close()
