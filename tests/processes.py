"""The registry's real processes for tests: gunicorn with registry_project/gunicorn.conf.py as
`make run` starts it, and `manage.py` commands (the job worker, the webhook sender, the prune
commands), all on the test database, which they reach through DATABASE_URL. Tests that use them
need ``transactional_db``, so what a test writes is committed and the processes see it."""

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from django.db import connection

ROOT = Path(__file__).resolve().parents[1]
# What a job worker runs before `db_worker`, in scripts/run.sh and in docker-compose.yml.
WORKER_STARTUP = "manage.py fail_stale_geti_imports"


def database_url(name=None):
    """The test database (or the database ``name`` on its server) as a DATABASE_URL for another process."""
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name or db['NAME']}"


def registry_env(tmp_path, *, s3_endpoint=None, bucket=None, **variables):
    """The environment of a registry process on the test database: artifacts in ``bucket`` at
    ``s3_endpoint``, or on local files under ``tmp_path`` without them; ``variables`` on top."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "SECRET_KEY": "test-serving-key",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "REGISTRY_VAR_DIR": str(tmp_path),
        "LOG_LEVEL": "WARNING",
    }
    env.pop("S3_BUCKET", None)
    if bucket:
        env.update(
            S3_BUCKET=bucket,
            S3_ENDPOINT_URL=s3_endpoint,
            S3_REGION="us-east-1",
            S3_ACCESS_KEY_ID=os.environ.get("S3_ACCESS_KEY_ID", os.environ["AWS_ACCESS_KEY_ID"]),
            S3_SECRET_ACCESS_KEY=os.environ.get("S3_SECRET_ACCESS_KEY", os.environ["AWS_SECRET_ACCESS_KEY"]),
        )
    env.update({name: str(value) for name, value in variables.items()})
    return env


def stop(process):
    """SIGTERM, as a deployment stops a process, and wait for it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def gunicorn(env, port, log=None):
    """gunicorn with the project's config on ``port``, answering; yields its URL. Its output goes
    to the file ``log`` when given."""
    with open(log or os.devnull, "ab") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--config", "registry_project/gunicorn.conf.py"]
            + ["--bind", f"127.0.0.1:{port}", "--access-logfile", "/dev/null"],
            cwd=ROOT,
            env=env,
            stdout=output if log else None,
            stderr=subprocess.STDOUT if log else None,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                # Both workers load the application on their first request.
                if requests.get(f"{url}/api/v1/registered-models/", timeout=30).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not start")
        for _ in range(6):  # the request that gets to the other worker first
            requests.get(f"{url}/api/v1/registered-models/", timeout=30)
        yield url
    finally:
        stop(process)


def manage(*args, env, log):
    """Start ``manage.py *args`` with its output in the file ``log``; returns the process."""
    with open(log, "ab") as output:
        return subprocess.Popen(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )


def wait_for(condition, timeout=30, every=0.1, message="the condition never held"):
    """Poll ``condition`` until it returns something true; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(message)


def start_worker(env, logs, processes, name):
    """A job worker started the way scripts/run.sh and the compose worker start one: the start-up
    command, then `db_worker`, added to ``processes``. Returns what the start-up command printed."""
    startup = subprocess.run(
        [sys.executable, *WORKER_STARTUP.split()], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    (logs / f"{name}-startup.log").write_text(startup.stdout + startup.stderr)
    processes.append(manage("db_worker", "--no-reload", env=env, log=logs / f"{name}.log"))
    return startup.stdout
