"""The gunicorn worker the registry is served with (registry_project/gunicorn.conf.py names it).

gunicorn's gthread worker hands a connection to a thread as soon as its first byte arrives, and
the thread then blocks reading the rest of the request head. A client that sends its headers a
line at a time holds that thread for as long as it likes, so a few dozen such clients stop the
service. This worker reads request heads in its event loop instead, without a thread, and gives
the connection to a thread only once the whole head is there; a head that does not arrive within
``REGISTRY_HEADER_TIMEOUT`` seconds is dropped. A request body is read by the thread (uploads
stream to storage as they arrive), so the body is cut off when it stalls for
``REGISTRY_BODY_STALL_SECONDS`` or, after ``REGISTRY_BODY_GRACE_SECONDS``, arrives slower on
average than ``REGISTRY_BODY_MIN_RATE`` bytes a second: a trickling upload frees its thread
instead of holding it for hours.

HTTPS and HTTP/2 served by gunicorn itself bypass the head buffering (the bytes on the socket are
not the request head there); the registry is served over plain HTTP/1.1 behind a TLS proxy.
"""

import os
import selectors
import socket
import time
from collections import deque
from functools import partial

from django.core.exceptions import BadRequest
from gunicorn.workers.gthread import TConn, ThreadWorker


def _env_number(name, default):
    raw = os.environ.get(name, "").strip()
    return float(raw) if raw else default


HEADER_TIMEOUT = _env_number("REGISTRY_HEADER_TIMEOUT", 15.0)
BODY_STALL_SECONDS = _env_number("REGISTRY_BODY_STALL_SECONDS", 30.0)
BODY_GRACE_SECONDS = _env_number("REGISTRY_BODY_GRACE_SECONDS", 10.0)
BODY_MIN_RATE = _env_number("REGISTRY_BODY_MIN_RATE", 16 * 1024)
# gunicorn refuses longer heads anyway (limit_request_line and limit_request_fields); a head
# past this is handed on so gunicorn answers it with its own 400.
MAX_HEAD_BYTES = 64 * 1024
# What gunicorn reads and discards of a body the application left unread, before it serves the
# connection's next request; with more left, it closes the connection instead.
DRAIN_BYTES = 64 * 1024


def unread_body_bytes(body):
    """How much of a Content-Length request body the application has not read yet."""
    length = getattr(getattr(body, "reader", None), "length", None)
    return 0 if length is None else length + len(body.buf.getvalue())


def closing_when_the_body_is_left(app):
    """Wrap the WSGI application so that a response sent before most of its request body was read
    (an upload refused early: 401, 409, 413, 503) says ``Connection: close``. gunicorn closes
    such a connection after the response anyway; without the header a client that already sent
    its whole body would send its next request on it and find it closed."""

    def application(environ, start_response):
        def start(status, headers, exc_info=None):
            if unread_body_bytes(environ["wsgi.input"]) > DRAIN_BYTES:
                start_response.__self__.force_close()
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return application


class SlowRequestBody(BadRequest):
    """The client sent the request body too slowly; Django answers 400 (JSON on API paths).

    Not an OSError: Django would turn that into UnreadablePostError and a 500."""


class PacedSocket:
    """The client socket as the request parser reads a body from it: each read waits only as long
    as the body may take to stay above the minimum rate (and never longer than the stall limit),
    so a trickling body is cut off within a read of falling behind, whatever size the
    application asked for."""

    def __init__(self, sock):
        self.sock = sock
        self.started = time.monotonic()
        self.received = 0

    def recv(self, size):
        now = time.monotonic()
        due = self.started + BODY_GRACE_SECONDS + self.received / BODY_MIN_RATE
        self.sock.settimeout(max(0.01, min(BODY_STALL_SECONDS, due - now)))
        try:
            data = self.sock.recv(size)
        except TimeoutError:
            if time.monotonic() >= due:
                self.cut(f"The request body arrived slower than {int(BODY_MIN_RATE)} bytes a second.")
            self.cut(f"The request body stalled for {int(BODY_STALL_SECONDS)} seconds.")
        finally:
            self.sock.settimeout(BODY_STALL_SECONDS)
        self.received += len(data)
        return data

    def cut(self, message):
        # Nothing more is read from this client: the connection ends after the 400 instead of
        # gunicorn draining the rest of the body.
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        raise SlowRequestBody(message)

    def __getattr__(self, name):
        return getattr(self.sock, name)


class HeadBufferingThreadWorker(ThreadWorker):
    """gthread, with request heads read by the event loop (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.heading_conns = deque()

    def load_wsgi(self):
        super().load_wsgi()
        self.wsgi = closing_when_the_body_is_left(self.wsgi)

    def buffers_heads(self):
        return not self.cfg.is_ssl and self.cfg.http_protocols == ["h1"]

    def accept(self, listener):
        if not self.buffers_heads():
            return super().accept(listener)
        try:
            client_sock, client_addr = listener.accept()
        except OSError as e:
            if isinstance(e, (BlockingIOError, ConnectionAbortedError)):
                return
            raise
        self.nr_conns += 1
        self.await_head(TConn(self.cfg, client_sock, client_addr, listener.getsockname()))

    def on_client_socket_readable(self, conn, client):
        """A kept-alive connection's next request: its head is buffered like a new one's."""
        if not self.buffers_heads():
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        self.await_head(conn)

    def await_head(self, conn):
        conn.sock.setblocking(False)
        conn.head = bytearray()
        conn.timeout = time.monotonic() + HEADER_TIMEOUT
        self.heading_conns.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_head_bytes, conn))

    def on_head_bytes(self, conn, client):
        try:
            data = conn.sock.recv(MAX_HEAD_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.drop_heading(conn)
            return
        conn.head += data
        if b"\r\n\r\n" in conn.head or b"\n\n" in conn.head or len(conn.head) > MAX_HEAD_BYTES:
            self.poller.unregister(conn.sock)
            self.heading_conns.remove(conn)
            conn.data_ready = True
            self.enqueue_req(conn)

    def drop_heading(self, conn):
        try:
            self.poller.unregister(conn.sock)
        except (OSError, KeyError, ValueError):
            pass
        self.heading_conns.remove(conn)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self):
        """Also drop connections whose request head did not arrive in time (run() calls this
        once a second)."""
        super().murder_pending()
        now = time.monotonic()
        while self.heading_conns and self.heading_conns[0].timeout <= now:
            self.drop_heading(self.heading_conns[0])

    def handle(self, conn):
        head = getattr(conn, "head", None)
        if head:
            conn.head = None
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(head))
        return super().handle(conn)

    def handle_request(self, req, conn):
        # From here on the socket carries this request's body and its response: writes to a
        # client that stops reading fail after the stall limit too.
        conn.sock.settimeout(BODY_STALL_SECONDS)
        unreader = conn.parser.unreader
        unreader.sock = PacedSocket(conn.sock)
        try:
            return super().handle_request(req, conn)
        finally:
            unreader.sock = conn.sock
