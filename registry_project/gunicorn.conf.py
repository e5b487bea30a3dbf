"""gunicorn settings for every way the registry is served: `make run` (scripts/run.sh), the Docker
image and the smoke test. Each passes only its own --bind. Threads rather than processes: most
requests wait on the database or object storage, and a download streams for as long as the client
takes; the timeout is long enough for a big upload's request body to arrive."""

wsgi_app = "registry_project.wsgi"
worker_class = "gthread"
workers = 2
threads = 8
timeout = 120
accesslog = "-"
