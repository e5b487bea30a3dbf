"""Webhooks bench: what the outbox adds to a write, and how fast workers deliver.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/registry_webhooks python bench/webhooks.py

Uses (and migrates) the database named by $DATABASE_URL; its registry rows and webhooks are
deleted first. The receiver is a threaded http.server on loopback answering 200 at once.
"""

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")
os.environ.setdefault("REGISTRY_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from models_app import events, services  # noqa: E402
from models_app.models import AuditEntry, Event, RegisteredModel  # noqa: E402
from webhooks import delivery  # noqa: E402
from webhooks.models import Delivery, Subscription  # noqa: E402
from webhooks.services import create_subscription  # noqa: E402

WRITES, EVENTS, MODELS = 300, 600, 20


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def reset():
    Subscription.objects.all().delete()
    Event.objects.all().delete()
    RegisteredModel.objects.all().delete()


def writes(label):
    """Seconds per create + update of a registered model (two audited writes)."""
    start = time.perf_counter()
    for i in range(WRITES):
        model = services.create_registered_model(name=f"bench-{label}-{i}")
        services.update_registered_model(model, fields={"description": "changed"})
    return (time.perf_counter() - start) / (2 * WRITES)


def drain(workers):
    def run():
        while delivery.run_once() > 0:
            pass
        connection.close()

    threads = [threading.Thread(target=run) for _ in range(workers)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def main():
    call_command("migrate", verbosity=0)
    print(f"database: {connection.vendor}, audit rows kept: {AuditEntry.objects.count()}")
    reset()
    real = events.emit_for_audit
    events.emit_for_audit = lambda *args, **kwargs: None
    without = writes("off")
    events.emit_for_audit = real
    with_events = writes("on")
    print(f"per audited write: {without * 1000:.2f} ms without the outbox, {with_events * 1000:.2f} ms with it")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for workers in (1, 2, 4):
        reset()
        create_subscription(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
        models = [services.create_registered_model(name=f"m-{i}") for i in range(MODELS)]
        for i in range(EVENTS - MODELS):
            services.update_registered_model(models[i % MODELS], fields={"description": str(i)})
        seconds = drain(workers)
        delivered = Delivery.objects.filter(state="delivered").count()
        print(
            f"{workers} worker(s): {delivered} deliveries ({MODELS} models) "
            f"in {seconds:.2f} s, {delivered / seconds:.0f}/s"
        )
    server.shutdown()
    reset()


if __name__ == "__main__":
    main()
