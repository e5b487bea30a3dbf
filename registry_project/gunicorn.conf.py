"""gunicorn settings for every way the registry is served: `make run` (scripts/run.sh), the Docker
image and the smoke test. Each passes only its own --bind. Threads rather than processes: most
requests wait on the database or object storage, and a download streams for as long as the client
takes; the timeout is long enough for a big upload's request body to arrive.

The worker is gthread with request heads read by its event loop (registry_project/serving.py): a
client sending its headers slowly costs a socket, not a thread, and a request body arriving
slower than a minimum rate is cut off. Threads are many because a thread is held for the whole
of an upload or a download; docs/deployment.md says what each deployment does against slow
clients."""

import os

wsgi_app = "registry_project.wsgi"
worker_class = "registry_project.serving.HeadBufferingThreadWorker"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "32"))
# Open connections per worker, most of them idle or still sending their request head.
worker_connections = 1000
timeout = 120
# A kept-alive connection waits this long for its next request, holding no thread meanwhile.
keepalive = 5
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
accesslog = "-"
