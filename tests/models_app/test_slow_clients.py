"""Slow clients against the real serving stack: gunicorn started with registry_project/gunicorn.conf.py
as `make run` starts it, on the test database. Clients that send their request heads a line at a
time, or their bodies a kilobyte a second, must not stop the registry answering others, and a body
below the minimum rate is cut off."""

import socket
import threading
import time

import pytest
import requests
from rest_framework.authtoken.models import Token

from models_app.models import RegisteredModel
from tests.conftest import free_port
from tests.processes import gunicorn, registry_env

GRACE_SECONDS = 2


@pytest.fixture
def server(transactional_db, tmp_path):
    """gunicorn with the project's config on a free port, artifacts on local files; its URL."""
    env = registry_env(tmp_path, REGISTRY_BODY_GRACE_SECONDS=GRACE_SECONDS)
    with gunicorn(env, free_port()) as url:
        yield url


def connect(url):
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def slow_head(url, stop):
    """Send a request head one header line a second, until told to stop."""
    sock = connect(url)
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        while not stop.wait(1):
            sock.sendall(b"X-Slow: 1\r\n")
    except OSError:
        pass
    finally:
        sock.close()


def slow_body(url, token, stop, answers):
    """Upload a 10 MB body a kilobyte a second; record the status line the server answers with."""
    sock = connect(url)
    path = "/api/v1/artifacts/upload/slow.bin?registered_model=slow&version=1"
    head = (
        f"PUT {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Token {token}\r\n"
        "Content-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
    )
    answer = b""
    try:
        sock.sendall(head.encode())
        sock.setblocking(False)
        while not stop.is_set() and b"\r\n" not in answer:
            try:
                answer += sock.recv(4096)
            except BlockingIOError:
                sock.sendall(b"x" * 1024)
                time.sleep(1)
            else:
                if not answer:
                    break
    except OSError:
        pass
    finally:
        sock.close()
        answers.append(answer.split(b"\r\n", 1)[0].decode(errors="replace"))


def test_slow_heads_and_slow_bodies_leave_the_registry_answering(server, django_user_model):
    user = django_user_model.objects.create_superuser("uploader", password="pw")
    token = Token.objects.create(user=user).key
    RegisteredModel.objects.create(name="fast")
    stop, answers = threading.Event(), []
    clients = [threading.Thread(target=slow_head, args=(server, stop)) for _ in range(50)]
    clients += [threading.Thread(target=slow_body, args=(server, token, stop, answers)) for _ in range(20)]
    for client in clients:
        client.start()
    try:
        time.sleep(1)  # every slow client is connected and sending
        for _ in range(3):
            # The timeouts are the requirement: a second for each answer while the slow clients send.
            assert requests.get(f"{server}/healthz", timeout=1).status_code == 200
            models = requests.get(f"{server}/api/v1/registered-models/", timeout=1)
            assert models.status_code == 200 and [m["name"] for m in models.json()["results"]] == ["fast"]
            time.sleep(0.5)
        # Past the grace period, every trickling upload has been answered 400 and let go.
        deadline = time.monotonic() + GRACE_SECONDS + 10
        while len(answers) < 20 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answers == ["HTTP/1.1 400 Bad Request"] * 20
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert not RegisteredModel.objects.filter(name="slow").exists()


def test_an_upload_refused_before_its_body_is_read_says_its_connection_closes(server):
    """gunicorn closes a connection whose request body was mostly left unread; the response says
    so, or a client that has sent its whole body would send its next request on it."""
    size = 4 * 1024 * 1024
    with connect(server) as sock:
        sock.sendall(
            "PUT /api/v1/artifacts/upload/m.bin?registered_model=m&version=1 HTTP/1.1\r\n"
            f"Host: {server.removeprefix('http://')}\r\nContent-Length: {size}\r\n\r\n".encode()
        )
        sock.sendall(b"x" * 256 * 1024)  # the refusal comes before the rest
        head = b""
        while b"\r\n\r\n" not in head:
            data = sock.recv(65536)
            assert data, head
            head += data
    status, *headers = head.split(b"\r\n\r\n")[0].decode().lower().split("\r\n")
    assert status.split()[1] == "401"
    assert "connection: close" in headers


def test_a_refusal_after_the_body_was_read_keeps_the_connection(server):
    with requests.Session() as session:
        response = session.put(f"{server}/api/v1/artifacts/upload/m.bin?registered_model=m&version=1", data=b"x" * 1024)
        assert response.status_code == 401
        assert response.headers["Connection"] == "keep-alive"
        assert session.get(f"{server}/api/v1/registered-models/").status_code == 200
