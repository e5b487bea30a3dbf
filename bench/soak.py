"""Soak bench: the registry's serving stack under a steady mixed load, watching for errors and
for memory that keeps growing.

    make bench-soak
    .venv/bin/python bench/soak.py [--duration 600] [--clients 50] [--models 100]

Serves the registry as `make run` does (scripts/run.sh: gunicorn with registry_project/gunicorn.conf.py,
the background-job worker and the webhook sender) on a fresh PostgreSQL database and S3 (a moto
server over HTTP, or $S3_ENDPOINT_URL and $S3_BUCKET), seeds ``--models`` registered models of
three versions with two or three small variants each (uploaded through the API), then runs
``--clients`` clients for ``--duration`` seconds, each one operation after another:

- 80% reads, one of seven picked at random: a page of registered models, a model's versions
  filtered by tag, one version, resolve for a device, a filtered page of artifacts, Intel's
  ``GET /models?name=&version=``, the download of a small artifact;
- 20% uploads into a new version, raw body (``PUT``) and multipart form (``POST``) in turn, of
  1 to 200 MiB drawn log-uniformly (half of them under 14 MiB, a mean of 38 MiB), streamed from a
  generator; each artifact, then its version, is deleted through the API right after.

The clients run in processes of ten threads each, so the load generator is not one GIL. The
resident memory of the gunicorn master and of each worker (and of the job worker and moto) is
sampled every 10 s. At the end it prints, per operation, the count, the unexpected statuses,
latency percentiles and upload throughput; the 5xx and connection errors; each process's memory
at the start of the load, after the warm-up, at its largest and at the end, and its slope after
the warm-up; and the objects in the bucket before and after the load (the deletes must leave
none behind). Exits 1 when any request got a 5xx or no answer. Everything it starts is stopped,
and its database dropped; the server's log is kept in var/bench/soak-server.log, and every
request (operation, start time, seconds, outcome, bytes) in var/bench/soak-requests.csv.
"""

import argparse
import csv
import json
import math
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    PYTHON,
    ROOT,
    MiB,
    StreamedBody,
    admin_token,
    children,
    drop_database,
    free_port,
    fresh_database,
    multipart_body,
    percentile,
    remove_tree,
    rss_bytes,
    s3_client,
    s3_env,
    s3_target,
    stop,
    table,
    wait_for,
)

PRECISIONS, DEVICES, FORMATS, STAGES = (
    ["FP32", "FP16", "INT8"],
    ["CPU", "GPU", "NPU"],
    ["openvino", "onnx"],
    ["dev", "prod"],
)
READS = [
    "list registered models",
    "list versions (tag filter)",
    "get one version",
    "resolve for a device",
    "artifact page (filtered)",
    "Intel GET /models?name=&version=",
    "download small artifact",
]
WRITES = ["upload raw body", "upload multipart form", "delete artifact", "delete version"]
UPLOAD_MODEL = "soak-uploads"
MIN_UPLOAD, MAX_UPLOAD = 1 * MiB, 200 * MiB
THREADS_PER_PROCESS = 10
SAMPLE_SECONDS = 10


def upload_size(rng):
    """Log-uniform between 1 and 200 MiB: many small files and a few large ones."""
    return int(MIN_UPLOAD * math.exp(rng.uniform(0, math.log(MAX_UPLOAD / MIN_UPLOAD))))


def generated(size, block):
    """``size`` bytes as slices of one random block: the client never holds the file."""
    view = memoryview(block)
    for start in range(0, size, len(block)):
        yield view[: min(len(block), size - start)]


def seed(api, token, models):
    """Registers ``models`` models of 3 versions with 2-3 small variants each through the API;
    returns what the reads pick from: one entry per variant."""
    rng = random.Random(7)
    combos = [(p, d, f) for p in PRECISIONS for d in DEVICES for f in FORMATS]
    plan = []
    for i in range(models):
        for version in (1, 2, 3):
            tags = json.dumps({"stage": rng.choice(STAGES)})
            for precision, device, fmt in rng.sample(combos, rng.choice((2, 3))):
                plan.append((f"soak-{i:04d}", str(version), tags, precision, device, fmt, rng.randint(4, 64) * 1024))
    by_model = defaultdict(list)
    for item in plan:
        by_model[item[0]].append(item)

    def register(items):
        # One model per task: its versions are created one after another.
        session, out = requests.Session(), []
        session.headers["Authorization"] = f"Token {token}"
        for name, version, tags, precision, device, fmt, size in items:
            fields = {"registered_model": name, "version": version, "tags": tags, "precision": precision}
            fields.update(target_device=device, format=fmt, score=round(random.random(), 3))
            response = session.post(
                f"{api}/artifacts/", data=fields, files={"file": ("model.bin", os.urandom(size))}, timeout=60
            )
            assert response.status_code == 201, (response.status_code, response.text[:300])
            out.append({"model": name, "version": version, "stage": json.loads(tags)["stage"], "precision": precision})
            out[-1].update(device=device, format=fmt, id=response.json()["id"], size=size)
        return out

    with ThreadPoolExecutor(8) as pool:
        return [v for chunk in pool.map(register, by_model.values()) for v in chunk]


class Client:
    """One client: a session of its own, operations one after another until the deadline."""

    def __init__(self, number, base, token, variants, models):
        self.rng = random.Random(number)
        self.number, self.base, self.api = number, base, base + "/api/v1"
        self.variants, self.pages = variants, max(1, math.ceil(models / 50))
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"
        self.block = os.urandom(MiB)
        self.records = []  # (kind, started, seconds, status, bytes); status "conn"/"timeout" without an answer
        self.uploads = 0
        self.messages = {}  # (kind, status) -> the first answer's body

    def call(self, kind, method, url, expect, **kwargs):
        """One request; records its outcome and returns the response when it is the expected one."""
        started, response = time.time(), None
        try:
            response = self.session.request(method, url, **kwargs)
            status, body = response.status_code, response.content
        except requests.Timeout as exc:
            status, body = "timeout", repr(exc).encode()
        except requests.RequestException as exc:
            status, body = "conn", repr(exc).encode()
        seconds = time.time() - started
        if status != expect:
            self.messages.setdefault((kind, status), body[:300].decode(errors="replace"))
        self.records.append((kind, started, seconds, "ok" if status == expect else status, len(body)))
        return response if status == expect else None

    def read(self):
        v, rng, api = self.rng.choice(self.variants), self.rng, self.api
        kind = rng.choice(READS)
        url = {
            "list registered models": f"{api}/registered-models/?ordering=name&page_size=50"
            f"&page={rng.randint(1, self.pages)}",
            "list versions (tag filter)": f"{api}/versions/?registered_model={v['model']}&tag=stage:{v['stage']}",
            "get one version": f"{api}/registered-models/{v['model']}/versions/{v['version']}/",
            "resolve for a device": f"{api}/registered-models/{v['model']}/resolve/?version={v['version']}"
            f"&target_device={v['device']}",
            "artifact page (filtered)": f"{api}/artifacts/?precision={v['precision']}&target_device={v['device']}"
            f"&format={v['format']}&ordering=-score&page_size=50",
            "Intel GET /models?name=&version=": f"{self.base}/models?name={v['model']}&version={v['version']}",
            "download small artifact": f"{api}/artifacts/{v['id']}/download/",
        }[kind]
        response = self.call(kind, "GET", url, 200, timeout=60)
        if response is not None and kind == "download small artifact" and len(response.content) != v["size"]:
            self.records[-1] = (*self.records[-1][:3], "short", len(response.content))

    def write(self):
        """One upload, then its artifact and its version deleted."""
        size, version = upload_size(self.rng), f"c{self.number}-{self.uploads}-{uuid.uuid4().hex[:6]}"
        fields = {"registered_model": UPLOAD_MODEL, "version": version, "precision": "FP16"}
        self.uploads += 1
        if self.uploads % 2:
            kind = "upload raw body"
            response = self.call(
                kind,
                "PUT",
                f"{self.api}/artifacts/upload/model.bin",
                201,
                params=fields,
                data=StreamedBody(generated(size, self.block), size),
                timeout=(10, 900),
            )
        else:
            kind, boundary = "upload multipart form", uuid.uuid4().hex
            response = self.call(
                kind,
                "POST",
                f"{self.api}/artifacts/",
                201,
                data=multipart_body(generated(size, self.block), size, "model.bin", fields, boundary),
                headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
                timeout=(10, 900),
            )
        self.records[-1] = (*self.records[-1][:4], size)
        if response is None:
            return
        artifact = response.json()
        if artifact["size"] != size:
            self.records[-1] = (*self.records[-1][:3], "short", size)
        self.call("delete artifact", "DELETE", f"{self.api}/artifacts/{artifact['id']}/", 204, timeout=60)
        self.call("delete version", "DELETE", f"{self.api}/versions/{artifact['version_id']}/", 204, timeout=60)

    def run(self, start_at, deadline):
        time.sleep(max(0, start_at - time.time()))
        while time.time() < deadline:
            self.read() if self.rng.random() < 0.8 else self.write()
        return self.records, self.messages


def client_process(numbers, base, token, variants, models, start_at, deadline):
    """Runs the clients ``numbers`` as threads of one process; returns all their records and the
    first body of each unexpected answer."""
    clients = [Client(n, base, token, variants, models) for n in numbers]
    records, messages = [], {}
    with ThreadPoolExecutor(len(clients)) as pool:
        for client_records, client_messages in pool.map(lambda c: c.run(start_at, deadline), clients):
            records += client_records
            messages = {**client_messages, **messages}
    return records, messages


def serve(env, log):
    """scripts/run.sh, what `make run` ends with; returns the process and the base URL."""
    port = free_port()
    proc = subprocess.Popen(
        ["bash", "scripts/run.sh", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={**env, "BIN": str(Path(PYTHON).parent)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/healthz", timeout=120)
    except BaseException:
        stop(proc)
        raise
    return proc, base


def command_line(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def memory(pid):
    """Resident bytes of ``pid`` (psutil when installed, else /proc); None once it has ended."""
    try:
        import psutil

        try:
            return psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return None
    except ImportError:
        try:
            return rss_bytes(pid)
        except OSError:
            return None


class MemorySampler:
    """Every ``SAMPLE_SECONDS``, the resident memory of each process of the stack, by name."""

    def __init__(self, runner, moto):
        self.runner, self.moto = runner, moto
        self.samples = []  # (seconds since start, {name: bytes})
        self.workers = {}  # pid -> name, in the order they were first seen

    def processes(self):
        named = {}
        for pid in children(self.runner.pid):
            line = command_line(pid)
            if "gunicorn" in line:
                named[pid] = "gunicorn master"
                for worker in children(pid):
                    named[worker] = self.workers.setdefault(worker, f"worker {len(self.workers) + 1}")
            elif "db_worker" in line:
                named[pid] = "job worker (db_worker)"
        if self.moto:
            named[self.moto.pid] = "moto (S3; keeps freed memory)"
        return named

    def sample(self):
        values = {name: memory(pid) for pid, name in self.processes().items()}
        self.samples.append((time.time() - self.started, {k: v for k, v in values.items() if v is not None}))

    def __enter__(self):
        self.started, self._stop = time.time(), threading.Event()
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(SAMPLE_SECONDS):
            self.sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()


def slope(points):
    """Least-squares slope of (seconds, bytes), in MiB per minute."""
    if len(points) < 2:
        return float("nan")
    n = len(points)
    mt, mb = sum(t for t, _ in points) / n, sum(b for _, b in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (b - mb) for t, b in points) / var * 60 / MiB if var else float("nan")


def bucket_objects(s3, bucket):
    """Objects and unfinished multipart uploads in the bucket."""
    objects = sum(page.get("KeyCount", 0) for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket))
    uploads = len(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    return objects, uploads


def report(records, samples, duration, warmup, before, after):
    """Prints the tables; returns the number of 5xx answers and of requests without one."""
    by_kind = defaultdict(list)
    for record in records:
        by_kind[record[0]].append(record)
    rows, server_errors, no_answer = [], 0, 0
    for kind in READS + WRITES:
        items = by_kind.get(kind, [])
        errors = Counter(r[3] for r in items if r[3] != "ok")
        server_errors += sum(n for s, n in errors.items() if isinstance(s, int) and s >= 500)
        no_answer += errors["conn"] + errors["timeout"]
        seconds = [r[2] for r in items]
        ok = [r for r in items if r[3] == "ok"]
        rate = "-"
        if kind.startswith("upload") and ok:
            rate = f"{sum(r[4] for r in ok) / MiB / sum(r[2] for r in ok):.1f}"
        rows.append(
            [
                kind,
                len(items),
                ", ".join(f"{s}: {n}" for s, n in sorted(errors.items(), key=str)) or "-",
                f"{percentile(seconds, 50) * 1000:.0f}",
                f"{percentile(seconds, 95) * 1000:.0f}",
                f"{max(seconds, default=float('nan')) * 1000:.0f}",
                rate,
            ]
        )
    print(table(["operation", "count", "errors (status: count)", "p50 ms", "p95 ms", "max ms", "MiB/s"], rows))
    uploads = [r for r in records if r[0].startswith("upload") and r[3] == "ok"]
    total = len(records)
    print(
        f"\n{total} requests ({total / duration:.1f}/s); {len(uploads)} uploads, "
        f"{sum(r[4] for r in uploads) / 1024**3:.1f} GiB ({sum(r[4] for r in uploads) / MiB / duration:.1f} MiB/s "
        f"over the run); 5xx: {server_errors} (target 0); connection errors and timeouts: {no_answer}"
    )
    print(f"bucket: {before[0]} objects, {before[1]} open multipart uploads before; {after[0]}, {after[1]} after\n")

    names = list(dict.fromkeys(name for _, values in samples for name in values))
    rows = []
    for name in names:
        points = [(t, values[name]) for t, values in samples if name in values]
        settled = [(t, b) for t, b in points if t >= warmup] or points[-1:]
        rows.append(
            [
                name,
                f"{points[0][1] / MiB:.1f}",
                f"{settled[0][1] / MiB:.1f}",
                f"{max(b for _, b in points) / MiB:.1f}",
                f"{points[-1][1] / MiB:.1f}",
                f"{slope(settled):+.2f}",
            ]
        )
    print(
        f"resident memory, MiB (sampled every {SAMPLE_SECONDS} s; warm-up {warmup:.0f} s; "
        f"slope after the warm-up, target flat):"
    )
    print(table(["process", "start", "after warm-up", "max", "end", "slope MiB/min"], rows))
    return server_errors, no_answer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (600)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--models", type=int, default=100, help="registered models seeded, 3 versions each (100)")
    parser.add_argument("--warmup", type=float, default=60, help="seconds before the memory slope counts (60)")
    parser.add_argument("--database", default="bench_soak", help="PostgreSQL database made for the run, then dropped")
    args = parser.parse_args()
    warmup = min(args.warmup, args.duration / 4)

    moto, endpoint, bucket = s3_target()
    work = Path(tempfile.mkdtemp(prefix="registry-soak-"))
    log_path, records_path = ROOT / "var" / "bench" / "soak-server.log", ROOT / "var" / "bench" / "soak-requests.csv"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    runner = None
    try:
        env = s3_env(endpoint, bucket, work, DATABASE_URL=fresh_database(args.database))
        s3 = s3_client(env)
        token = admin_token(env)
        with open(log_path, "wb") as log:
            runner, base = serve(env, log)
            print(f"seeding {args.models} models x 3 versions ...", flush=True)
            variants = seed(base + "/api/v1", token, args.models)
            before = bucket_objects(s3, bucket)
            print(
                f"{len(variants)} variants; {args.clients} clients for {args.duration:.0f} s "
                f"(server log: {log_path.relative_to(ROOT)}) ...",
                flush=True,
            )
            numbers = list(range(args.clients))
            groups = [numbers[i : i + THREADS_PER_PROCESS] for i in range(0, len(numbers), THREADS_PER_PROCESS)]
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(len(groups), mp_context=context) as pool:
                start_at = time.time() + 5  # every process imported and ready
                deadline = start_at + args.duration
                futures = [
                    pool.submit(client_process, group, base, token, variants, args.models, start_at, deadline)
                    for group in groups
                ]
                time.sleep(max(0, start_at - time.time()))
                records, messages = [], {}
                with MemorySampler(runner, moto) as sampler:
                    for future in futures:
                        records += future.result()[0]
                        messages = {**future.result()[1], **messages}
            elapsed = time.time() - start_at
            after = bucket_objects(s3, bucket)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        print(
            f"\nSoak at {commit.stdout.strip() or '?'}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC: "
            f"{args.clients} clients, {elapsed:.0f} s (load for {args.duration:.0f} s, then the operations in flight "
            f"finished); {args.models} models, {len(variants)} variants; S3 at {endpoint}{' (moto)' if moto else ''}; "
            f"load average {os.getloadavg()[0]:.1f}\n"
        )
        with open(records_path, "w", newline="") as handle:
            csv.writer(handle).writerows(
                [("operation", "started", "seconds", "outcome", "bytes"), *sorted(records, key=lambda r: r[1])]
            )
        server_errors, no_answer = report(records, sampler.samples, elapsed, warmup, before, after)
        if messages:
            print("\nfirst answer of each unexpected status:")
            for (kind, status), body in sorted(messages.items(), key=str):
                print(f"  {kind}, {status}: {body}")
    finally:
        stop(runner)
        stop(moto)
        drop_database(args.database)
        remove_tree(work)
    if server_errors or no_answer:
        print(f"\nFAILED: {server_errors} answers 5xx, {no_answer} without an answer; see {log_path}")
        sys.exit(1)


if __name__ == "__main__":
    main()
