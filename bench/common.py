"""Shared helpers for the bench scripts: servers on loopback, RSS sampling, timing tables."""

import itertools
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
GUNICORN = str(Path(sys.executable).with_name("gunicorn"))
PG = "postgres://postgres@127.0.0.1:5432"
MiB = 1024 * 1024


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout}s")


# glibc malloc settings for the moto server: keep freed memory for the next request instead of
# handing it back to the kernel. Without them, moto (one thread per request, each with its own
# malloc arena) takes 1.2-1.4 million page faults per GiB received, 7-11 s of kernel time that
# competes with whatever runs beside it on the same cores. A long-running S3 server reuses its
# buffers; these settings make the stand-in behave so, for both paths alike.
MOTO_MALLOC = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_THRESHOLD_": str(1 << 30),
    "MALLOC_TRIM_THRESHOLD_": str(4 << 30),
    "MALLOC_TOP_PAD_": str(256 << 20),
}


def start_moto(tuned=True):
    """A moto S3 server in its own process (large objects spill to temporary files)."""
    port = free_port()
    env = {**os.environ, **(MOTO_MALLOC if tuned else {})}
    proc = subprocess.Popen(
        [PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url)
    except BaseException:
        stop(proc)
        raise
    return proc, url


def s3_target(tuned=True):
    """The S3 a bench runs against: $S3_ENDPOINT_URL (and $S3_BUCKET) when set, else a moto server
    started here. Returns the moto process (None for an outside endpoint), the endpoint and a
    bucket name."""
    moto, endpoint = None, os.environ.get("S3_ENDPOINT_URL")
    if not endpoint:
        moto, endpoint = start_moto(tuned=tuned)
    return moto, endpoint, os.environ.get("S3_BUCKET") or f"bench-{uuid.uuid4().hex[:8]}"


def manage(env, *args):
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def start_gunicorn(env, workers=1, threads=4):
    port = free_port()
    proc = subprocess.Popen(
        [
            GUNICORN,
            "registry_project.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--worker-class",
            "gthread",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "600",
            "--log-level",
            "warning",
            *os.environ.get("BENCH_GUNICORN_ARGS", "").split(),
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/healthz")
    except BaseException:
        stop(proc)
        raise
    return proc, base


def stop(proc):
    if proc and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


def children(pid):
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_bytes(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid):
    """User + system CPU time the process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds each process spends inside the ``with`` block (``used`` maps pid -> seconds)."""

    def __init__(self, pids):
        self.pids = [p for p in pids if p]

    def __enter__(self):
        self.start = {p: cpu_seconds(p) for p in self.pids}
        return self

    def __exit__(self, *exc):
        self.used = {p: cpu_seconds(p) - self.start[p] for p in self.pids}


class RssSampler:
    """Samples the resident memory of the given processes every 20 ms; ``growth`` is the largest
    rise above what they used when sampling started (the sum over processes)."""

    def __init__(self, pids):
        self.pids = pids

    def __enter__(self):
        self.baseline = sum(rss_bytes(p) for p in self.pids)
        self.peak, self._stop = self.baseline, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(rss_bytes(p) for p in self.pids))
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth(self):
        return self.peak - self.baseline


def percentile(values, pct):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def table(headers, rows):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = " | ".join(str(h).ljust(w) for h, w in zip(headers, widths))
    out = [line, "-|-".join("-" * w for w in widths)]
    out += [
        " | ".join(
            str(c).rjust(w) if isinstance(c, (int, float)) or str(c)[:1].isdigit() else str(c).ljust(w)
            for c, w in zip(r, widths)
        )
        for r in rows
    ]
    return "\n".join(out)


def median(values):
    return statistics.median(values) if values else float("nan")


def s3_env(endpoint, bucket, work, **extra):
    """The environment of a registry storing its artifacts in ``bucket`` at ``endpoint``, its
    database and files under ``work``."""
    return base_env(
        S3_BUCKET=bucket,
        S3_ENDPOINT_URL=endpoint,
        S3_REGION="us-east-1",
        S3_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "bench"),
        S3_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "bench"),
        REGISTRY_VAR_DIR=work / "var",
        LOG_LEVEL="WARNING",
        **extra,
    )


def s3_client(env):
    """A boto3 client for the bucket ``env`` names, with the registry's own client settings, so
    direct transfers and the registry's sign requests alike. Creates the bucket if missing."""
    import boto3

    sys.path.insert(0, str(ROOT))
    from registry_project.settings import s3_storage_options

    client = boto3.client(
        "s3",
        endpoint_url=env["S3_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=env["S3_ACCESS_KEY_ID"],
        aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"],
        config=s3_storage_options(env["S3_BUCKET"])["client_config"],
    )
    try:
        client.create_bucket(Bucket=env["S3_BUCKET"])
    except client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return client


def issue_token(env, username="admin"):
    """An API token of ``username`` (``manage.py issue_token``) on the registry ``env`` configures."""
    return subprocess.run(
        [PYTHON, "manage.py", "issue_token", username], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    ).stdout.strip()


def base_env(**extra):
    env = {k: v for k, v in os.environ.items()}
    env.setdefault("AWS_ACCESS_KEY_ID", "bench")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("SECRET_KEY", "bench-only-not-secret")  # serving refuses to start without one
    env.update({k: str(v) for k, v in extra.items()})
    if "REGISTRY_VAR_DIR" in extra:  # where collected static files would be; whitenoise warns without it
        (Path(extra["REGISTRY_VAR_DIR"]) / "static").mkdir(parents=True, exist_ok=True)
    return env


def fresh_database(name):
    """An empty PostgreSQL database ``name`` (dropped first if it exists); returns its URL."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


def drop_database(name):
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class StreamedBody:
    """A request body read from an iterable of byte chunks, with a known length, so requests sends
    Content-Length and never holds the whole body."""

    def __init__(self, chunks, length):
        self.length = length
        self._chunks = iter(chunks)
        self._chunk, self._pos = b"", 0

    def __len__(self):
        return self.length

    def read(self, n=-1):
        """At most ``n`` bytes, sliced out of the current chunk without copying the rest
        (http.client reads a few KiB at a time)."""
        if self._pos >= len(self._chunk):
            self._chunk, self._pos = next(self._chunks, b""), 0
            if not self._chunk:
                return b""
        view = memoryview(self._chunk)
        end = len(self._chunk) if n is None or n < 0 else self._pos + n
        data = bytes(view[self._pos : end])
        self._pos += len(data)
        return data


def multipart_body(chunks, size, filename, fields, boundary):
    """A multipart/form-data body: ``fields``, then a file of ``size`` bytes named ``filename``
    whose content comes from ``chunks``, streamed."""
    head = "".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()
    )
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    tail = f"\r\n--{boundary}--\r\n".encode()
    head = head.encode()
    return StreamedBody(itertools.chain([head], chunks, [tail]), len(head) + size + len(tail))


def admin_token(env):
    """Migrate the registry's database, make sure the admin exists, and return its API token."""
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_admin", "--url", "http://127.0.0.1")
    return issue_token(env)


def remove_tree(path):
    """Delete a bench run's working directory (its files, database and local media)."""
    for item in sorted(path.rglob("*"), reverse=True):
        item.unlink() if item.is_file() else item.rmdir()
    path.rmdir()
