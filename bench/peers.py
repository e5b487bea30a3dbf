"""Peers bench: this registry beside MLflow's model registry, measured in one run.

    make bench-peers
    .venv/bin/python bench/peers.py [--models 2000] [--versions 10] [--requests 300] [--workers 2]
                                    [--client http|requests] [--reuse]

MLflow goes into a virtual environment of its own (var/bench/mlflow-venv), never into the
registry's requirements. Both servers start on fresh PostgreSQL databases with the same number of
workers, and both are seeded through their own REST APIs: ``--models`` registered models with
``--versions`` versions each, every version tagged with a precision and a target device. The
registry's versions then get five variants each (bulk-inserted rows: there is no peer for them).

Reads are interleaved, one MLflow call, then the same call on the registry, each on a fresh
connection, so both see the same machine at the same moment. Reads and writes are made with the
standard library's http.client, which adds little of its own to each request (``--client
requests`` makes them with the requests library, as earlier runs did; the writes, each thread on a
connection it keeps, took it in the runs recorded before "Writes made with http.client"). At
concurrency 8 the two servers take turns in short blocks of eight threads each. The table gives
p50, p95 and requests per second per call, and the ratio of the registry's requests per second to
MLflow's. Everything the bench starts is stopped when it ends.
"""

import argparse
import http.client
import io
import json
import os
import random
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    PG,
    ROOT,
    base_env,
    free_port,
    fresh_database,
    manage,
    percentile,
    start_gunicorn,
    stop,
    table,
    wait_for,
)

MLFLOW_VERSION = "3.17.2"
MLFLOW_VENV = ROOT / "var" / "bench" / "mlflow-venv"
# The cheapest request each server answers: what the serving stack alone costs per call.
FLOOR = "floor: liveness (/healthz, /health)"
FLOOR_IN_PROCESS = "floor: /healthz"
PRECISIONS, DEVICES, FORMATS = ["FP32", "FP16", "INT8", "INT4"], ["CPU", "GPU", "NPU"], ["openvino", "onnx"]


def ensure_mlflow():
    """MLflow in a virtual environment of its own, made on first use."""
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    if not mlflow.exists():
        print(f"installing MLflow {MLFLOW_VERSION} into {MLFLOW_VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run(
            [MLFLOW_VENV / "bin" / "pip", "install", "-q", f"mlflow=={MLFLOW_VERSION}", "psycopg[binary]"],
            check=True,
        )
    return mlflow


def vacuum(url):
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def start_mlflow(mlflow, db_url, workers, artifacts_dir):
    port = free_port()
    proc = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            db_url.replace("postgres://", "postgresql://"),
            "--default-artifact-root",
            f"file://{artifacts_dir}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/health", timeout=180)
    except BaseException:
        stop(proc)
        raise
    return proc, base


class MLflow:
    """MLflow's registry REST API (2.0), as its own clients call it."""

    name = "MLflow"

    def __init__(self, base):
        self.base = base
        self.api = base + "/api/2.0/mlflow"
        self.headers = {}

    def create_model(self, session, name):
        return session.post(f"{self.api}/registered-models/create", json={"name": name}, timeout=60)

    def create_version(self, session, name, version, precision, device):
        tags = [{"key": "precision", "value": precision}, {"key": "target_device", "value": device}]
        body = {"name": name, "source": f"s3://bench-models/{name}/{version}", "tags": tags}
        return session.post(f"{self.api}/model-versions/create", json=body, timeout=60)

    def reads(self, model, version, precision, device, fmt, fragment):
        """The same questions asked of MLflow's API. It has no variants: Intel's list and resolve
        become a search of one model's version (with the device's tag for resolve), and the page
        of artifacts a search of all versions by the two tags MLflow's versions carry (it has no
        format or score), 50 to a page in its own order."""
        search = f"{self.api}/model-versions/search?filter="
        one = f"name='{model}' and version_number={version}"
        return {
            FLOOR: f"{self.base}/health",
            "versions of one model": search + quote(f"name='{model}'"),
            "versions of one model with a tag": search + quote(f"name='{model}' and tags.precision='{precision}'"),
            "one version by model and version": f"{self.api}/model-versions/get?name={model}&version={version}",
            "registered models by name substring": f"{self.api}/registered-models/search?filter="
            + quote(f"name LIKE '%{fragment}%'"),
            "page of 50 registered models": f"{self.api}/registered-models/search?max_results=50"
            + "&order_by=name%20ASC",
            "filtered page of artifacts": search
            + quote(f"tags.precision='{precision}' and tags.target_device='{device}'")
            + "&max_results=50",
            "Intel GET /models?name=&version=": search + quote(one),
            "resolve for a device": search + quote(f"{one} and tags.target_device='{device}'"),
        }


class Registry:
    """This registry's /api/v1, Intel's routes and the pages."""

    name = "registry"

    def __init__(self, base, token):
        self.base = base
        self.api = base + "/api/v1"
        self.headers = {"Authorization": f"Token {token}"}

    def create_model(self, session, name):
        return session.post(f"{self.api}/registered-models/", json={"name": name}, headers=self.headers, timeout=60)

    def create_version(self, session, name, version, precision, device):
        body = {
            "registered_model": name,
            "version": str(version),
            "tags": {"precision": precision, "target_device": device},
        }
        return session.post(f"{self.api}/versions/", json=body, headers=self.headers, timeout=60)

    def reads(self, model, version, precision, device, fmt, fragment):
        return {
            FLOOR: f"{self.base}/healthz",
            "versions of one model": f"{self.api}/versions/?registered_model={model}",
            "versions of one model with a tag": f"{self.api}/versions/?registered_model={model}"
            f"&tag=precision:{precision}",
            "one version by model and version": f"{self.api}/registered-models/{model}/versions/{version}/",
            "registered models by name substring": f"{self.api}/registered-models/?name={fragment}",
            "page of 50 registered models": f"{self.api}/registered-models/?ordering=name&page_size=50",
            "filtered page of artifacts": f"{self.api}/artifacts/?precision={precision}&target_device={device}"
            f"&format={fmt}&ordering=-score&page_size=50",
            "Intel GET /models?name=&version=": f"{self.base}/models?name={model}&version={version}",
            "resolve for a device": f"{self.api}/registered-models/{model}/resolve/?version={version}"
            f"&target_device={device}",
        }

    def solo_reads(self, model, version):
        """The pages: MLflow's UI is a single-page app over the same API, so it has no peer here."""
        return {
            "page /": f"{self.base}/",
            "page /m/<name>/": f"{self.base}/m/{model}/",
            "version page": f"{self.base}/m/{model}/v/{version}/",
        }


def seed(peers, models, versions, concurrency):
    """Create the same models and versions on each peer through its API, interleaved per model;
    returns writes per second for each peer at each concurrency."""
    rng = random.Random(11)
    plan = [
        (f"model-{i:05d}", [(v, rng.choice(PRECISIONS), rng.choice(DEVICES)) for v in range(1, versions + 1)])
        for i in range(models)
    ]
    spent = {(p.name, c): [0.0, 0] for p in peers for c in concurrency}
    local = threading.local()
    lock = threading.Lock()

    def write(peer, conc, name, items):
        if not hasattr(local, "session"):
            local.session = requests.Session() if CLIENT[0] == "requests" else KeptConnections()
        session = local.session
        response = peer.create_model(session, name)
        assert response.status_code in (200, 201), (peer.name, response.status_code, response.text[:300])
        for version, precision, device in items:
            response = peer.create_version(session, name, version, precision, device)
            assert response.status_code in (200, 201), (peer.name, response.status_code, response.text[:300])
        with lock:
            spent[(peer.name, conc)][1] += 1 + len(items)

    # The first tenth at concurrency 1, the rest at the highest; each peer takes its turn per block.
    split = max(1, models // 10)
    blocks = [(concurrency[0], plan[:split])] + [
        (concurrency[-1], plan[i : i + 40]) for i in range(split, len(plan), 40)
    ]
    for conc, block in blocks:
        for peer in peers:
            start = time.perf_counter()
            with ThreadPoolExecutor(conc) as pool:
                list(pool.map(lambda item, p=peer, c=conc: write(p, c, *item), block))
            spent[(peer.name, conc)][0] += time.perf_counter() - start
    return {key: (count / seconds if seconds else float("nan")) for key, (seconds, count) in spent.items()}


def seed_variants():
    """Five variants on every version of the registry (run inside the registry's environment)."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")
    django.setup()
    import uuid

    from django.utils import timezone

    from models_app.models import Artifact, ModelVersion

    rng = random.Random(5)
    now = timezone.now()
    batch = []
    for n, version_id in enumerate(ModelVersion.objects.values_list("id", flat=True).order_by("id").iterator()):
        for k in range(5):
            batch.append(
                Artifact(
                    version_id=version_id,
                    precision=PRECISIONS[k % 4],
                    target_device=DEVICES[(n + k) % 3],
                    format=FORMATS[(n + k // 4) % 2],
                    score=rng.random(),
                    size=rng.randint(10**6, 10**9),
                    sha256=uuid.uuid4().hex * 2,
                    file=f"artifacts/{uuid.uuid4()}/model.bin",
                    original_filename="model.bin",
                    created_at=now,
                )
            )
        if len(batch) >= 10000:
            Artifact.objects.bulk_create(batch)
            batch = []
    Artifact.objects.bulk_create(batch)


def fetch(url, headers):
    """One GET on a fresh connection, with the client ``--client`` names; returns seconds."""
    return FETCH[CLIENT[0]](url, {**headers, "Connection": "close", "Accept-Encoding": "gzip, deflate"})


def fetch_http(url, headers):
    """The standard library's http.client: what the client itself adds to each request is small
    beside either server's time (``--client requests`` adds about four times as much)."""
    parts = urlsplit(url)
    start = time.perf_counter()
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path, headers=headers)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    elapsed = time.perf_counter() - start
    assert response.status == 200, (url, response.status, body[:300])
    return elapsed


def fetch_requests(url, headers):
    start = time.perf_counter()
    response = requests.get(url, headers=headers, timeout=60)
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return elapsed


ENCODER = json.JSONEncoder()


class KeptConnections:
    """What the writes need of a requests.Session, with http.client: JSON posted over a
    connection kept open per server, opened again if the server closed it while idle."""

    def __init__(self):
        self.connections = {}

    def post(self, url, json, headers=None, timeout=60):
        parts = urlsplit(url)
        body = ENCODER.encode(json).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
        for attempt in (1, 2):
            connection = self.connections.get(parts.netloc)
            kept = connection is not None
            if not kept:
                connection = self.connections[parts.netloc] = http.client.HTTPConnection(
                    parts.hostname, parts.port, timeout=timeout
                )
            try:
                connection.request("POST", parts.path, body=body, headers=headers)
                response = connection.getresponse()
                return SimpleNamespace(status_code=response.status, text=response.read().decode())
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                connection.close()
                del self.connections[parts.netloc]
                if not kept or attempt == 2:
                    raise


FETCH = {"http": fetch_http, "requests": fetch_requests}
CLIENT = ["http"]

# A server that answers every connection at once with the same few bytes, for client_cost.
ANSWER_AT_ONCE = """
import socket, sys
server = socket.create_server(("127.0.0.1", 0), backlog=128)
print(server.getsockname()[1], flush=True)
answer = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\nok"
while True:
    conn, _ = server.accept()
    request = b""
    while b"\\r\\n\\r\\n" not in request:
        chunk = conn.recv(65536)
        if not chunk:
            break
        request += chunk
    conn.sendall(answer)
    conn.close()
"""


def client_cost(n=300):
    """Each client's own time per request (p50, ms), against a socket that answers at once: what
    the measuring adds to every call of both servers."""
    proc = subprocess.Popen([sys.executable, "-c", ANSWER_AT_ONCE], stdout=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{proc.stdout.readline().strip()}/"
        return {
            name: percentile([fetch_one(url, {"Connection": "close"}) for _ in range(n)], 50) * 1000
            for name, fetch_one in FETCH.items()
        }
    finally:
        stop(proc)


def measure(peers, calls, n, concurrency):
    """Latencies and requests per second per (call, peer) at one concurrency.

    ``calls(i)`` gives, for request i, a dict call -> {peer name: url}. At concurrency 1 the peers
    alternate request by request; above it, they alternate in blocks of ``concurrency`` threads."""
    results = {}
    labels = list(calls(0))
    for label in labels:
        for peer in peers:
            if peer.name in calls(0)[label]:
                results[(label, peer.name)] = {"lat": [], "wall": 0.0}
        if concurrency == 1:
            for i in range(n):
                urls = calls(i)[label]
                for peer in peers if i % 2 == 0 else reversed(peers):
                    if peer.name in urls:
                        seconds = fetch(urls[peer.name], peer.headers)
                        results[(label, peer.name)]["lat"].append(seconds)
                        results[(label, peer.name)]["wall"] += seconds
        else:
            block = concurrency * 5
            for start in range(0, n, block):
                for peer in peers:
                    if peer.name not in calls(0)[label]:
                        continue
                    urls = [calls(i)[label][peer.name] for i in range(start, min(n, start + block))]
                    t0 = time.perf_counter()
                    with ThreadPoolExecutor(concurrency) as pool:
                        lat = list(pool.map(lambda u, p=peer: fetch(u, p.headers), urls))
                    results[(label, peer.name)]["wall"] += time.perf_counter() - t0
                    results[(label, peer.name)]["lat"].extend(lat)
    return {
        key: (percentile(v["lat"], 50), percentile(v["lat"], 95), len(v["lat"]) / v["wall"])
        for key, v in results.items()
    }


def reach(result_by_conc, in_process):
    """For each peer call, whether 3x MLflow's requests per second is below what the registry
    serves for its cheapest request at the same concurrency; if it is not, no work on the view
    can reach 3x with this serving stack on this machine.

    At concurrency 1 a tighter bound is given too: the floor's time per request plus what the
    call costs in process beyond the floor's own request (``in_process``, ms by call, from
    ``--budget``); it takes nothing else into account."""
    rows = []
    for conc, result in result_by_conc.items():
        floor = result[(FLOOR, "registry")][2]
        for (label, peer), (_, _, rps) in result.items():
            if peer != "MLflow" or label == FLOOR:
                continue
            bound = None
            if conc == 1 and label in in_process:
                bound = 1000 / (1000 / floor + in_process[label] - in_process.get(FLOOR_IN_PROCESS, 0.0))
            rows.append(
                [
                    label,
                    conc,
                    f"{rps:.1f}",
                    f"{3 * rps:.1f}",
                    f"{floor:.1f}",
                    "yes" if floor >= 3 * rps else "no",
                    "-" if bound is None else f"{bound:.1f}",
                    "-" if bound is None else ("yes" if bound >= 3 * rps else "no"),
                ]
            )
    return rows


def timed(spent):
    """A database execute wrapper adding each query's seconds to ``spent[0]`` and counting it in
    ``spent[1]``: the times Django records per query are rounded to the millisecond, as long as a
    whole query here, and recording them (its debug cursor) costs Python time of its own."""

    def wrapper(execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent[0] += time.perf_counter() - start
            spent[1] += 1

    return wrapper


def serve(handler, url, token):
    """``GET url`` through Django's WSGI handler, as the server calls it (no test client), with
    the headers the bench's reads send; returns the status code."""
    path, _, query = url.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Token {token}",
        "HTTP_ACCEPT_ENCODING": "gzip, deflate",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    status = []
    body = handler(environ, lambda line, headers, exc_info=None: status.append(line))
    try:
        for _ in body:
            pass
    finally:
        body.close()
    return int(status[0].split()[0])


def budget(token, models, versions):
    """Python time per request beyond SQL, in process, for each list (run in the registry's env)."""
    import django

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")
    django.setup()
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection

    handler = WSGIHandler()
    rng = random.Random(3)
    rows = []
    lists = {
        FLOOR_IN_PROCESS: lambda m, v: "/healthz",
        "versions of one model": lambda m, v: f"/api/v1/versions/?registered_model={m}",
        "versions of one model with a tag": lambda m, v: f"/api/v1/versions/?registered_model={m}&tag=precision:INT8",
        "one version, list filter": lambda m, v: f"/api/v1/versions/?registered_model={m}&version={v}",
        "one version by model and version": lambda m, v: f"/api/v1/registered-models/{m}/versions/{v}/",
        "registered models by name substring": lambda m, v: f"/api/v1/registered-models/?name={m[-4:-1]}",
        "page of 50 registered models": lambda m, v: "/api/v1/registered-models/?ordering=name&page_size=50",
        "filtered page of artifacts": lambda m, v: (
            "/api/v1/artifacts/?precision=INT8&target_device=NPU&format=onnx&ordering=-score&page_size=50"
        ),
        "page of 50 artifacts": lambda m, v: "/api/v1/artifacts/?page_size=50",
        "Intel GET /models?name=&version=": lambda m, v: f"/models?name={m}&version={v}",
        "resolve for a device": lambda m, v: f"/api/v1/registered-models/{m}/resolve/?version={v}&target_device=NPU",
    }
    for label, url_for in lists.items():
        totals, sqls, counts = [], [], []
        for i in range(60):
            url = url_for(f"model-{rng.randrange(models):05d}", rng.randint(1, versions))
            sql = [0.0, 0]
            with connection.execute_wrapper(timed(sql)):
                start = time.perf_counter()
                status = serve(handler, url, token)
                total = time.perf_counter() - start
            assert status == 200, (url, status)
            if i >= 10:  # the first requests warm caches and compile templates
                totals.append(total)
                sqls.append(sql[0])
                counts.append(sql[1])
        python = [t - s for t, s in zip(totals, sqls)]
        rows.append(
            [
                label,
                counts[-1],
                f"{percentile(totals, 50) * 1000:.2f}",
                f"{percentile(sqls, 50) * 1000:.2f}",
                f"{percentile(python, 50) * 1000:.2f}",
            ]
        )
    print(json.dumps(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300, help="requests per call, peer and concurrency")
    parser.add_argument("--workers", type=int, default=2, help="server workers, the same for both")
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the reads on the databases the last run seeded (same --models and --versions), without writes",
    )
    parser.add_argument(
        "--client",
        choices=sorted(FETCH),
        default="http",
        help="the HTTP client the reads and writes are made with (http: the standard library's http.client)",
    )
    parser.add_argument("--seed-variants", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--budget", metavar="TOKEN", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_variants:
        return seed_variants()
    if args.budget:
        return budget(args.budget, args.models, args.versions)

    concurrency = [int(c) for c in args.concurrency.split(",")]
    CLIENT[0] = args.client
    mlflow_bin = ensure_mlflow()
    work = ROOT / "var" / "bench" / "peers"
    work.mkdir(parents=True, exist_ok=True)
    if args.reuse:
        mlflow_db, registry_db = f"{PG}/bench_peers_mlflow", f"{PG}/bench_peers_registry"
    else:
        mlflow_db, registry_db = fresh_database("bench_peers_mlflow"), fresh_database("bench_peers_registry")
    env = base_env(
        DATABASE_URL=registry_db,
        REGISTRY_VAR_DIR=work / "var",
        REGISTRY_ADMIN_PASSWORD="bench-admin",
        SECRET_KEY="bench-peers-not-secret",
        LOG_LEVEL="WARNING",
    )
    env.pop("S3_BUCKET", None)
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_admin", "--url", "http://127.0.0.1")
    token = subprocess.run(
        [sys.executable, "manage.py", "issue_token", "admin"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()

    procs = []
    try:
        mlflow_proc, mlflow_base = start_mlflow(mlflow_bin, mlflow_db, args.workers, work / "mlflow-artifacts")
        procs.append(mlflow_proc)
        registry_proc, registry_base = start_gunicorn(env, workers=args.workers, threads=4)
        procs.append(registry_proc)
        peers = [MLflow(mlflow_base), Registry(registry_base, token)]

        if args.reuse:
            writes = {}
        else:
            print(f"seeding {args.models} models x {args.versions} versions on both ...", flush=True)
            writes = seed(peers, args.models, args.versions, concurrency)
            subprocess.run([sys.executable, __file__, "--seed-variants"], cwd=ROOT, env=env, check=True)
            vacuum(mlflow_db)
            vacuum(registry_db)

        rng = random.Random(17)
        picks = [
            (
                f"model-{rng.randrange(args.models):05d}",
                rng.randint(1, args.versions),
                rng.choice(PRECISIONS),
                rng.choice(DEVICES),
                rng.choice(FORMATS),
                f"{rng.randrange(args.models):05d}"[1:4],
            )
            for _ in range(max(args.requests, 8 * args.workers))
        ]

        def calls(i):
            model, version, precision, device, fmt, fragment = picks[i]
            theirs = peers[0].reads(model, version, precision, device, fmt, fragment)
            ours = peers[1].reads(model, version, precision, device, fmt, fragment)
            out = {label: {"MLflow": theirs[label], "registry": ours[label]} for label in ours}
            for label, url in peers[1].solo_reads(model, version).items():
                out[label] = {"registry": url}
            return out

        for peer in peers:  # every worker opens its database connection before measuring
            for i in range(4 * args.workers):
                for urls in calls(i).values():
                    if peer.name in urls:
                        fetch(urls[peer.name], peer.headers)

        rows, result_by_conc = [], {}
        for conc in concurrency:
            print(f"reads at concurrency {conc} ...", flush=True)
            result = measure(peers, calls, args.requests, conc)
            result_by_conc[conc] = result
            for label in calls(0):
                theirs, ours = result.get((label, "MLflow")), result[(label, "registry")]
                rows.append(
                    [
                        label,
                        conc,
                        f"{theirs[0] * 1000:.1f}" if theirs else "-",
                        f"{theirs[1] * 1000:.1f}" if theirs else "-",
                        f"{theirs[2]:.1f}" if theirs else "-",
                        f"{ours[0] * 1000:.1f}",
                        f"{ours[1] * 1000:.1f}",
                        f"{ours[2]:.1f}",
                        f"{ours[2] / theirs[2]:.2f}x" if theirs else "-",
                    ]
                )
        for conc in concurrency if writes else ():
            theirs, ours = writes[("MLflow", conc)], writes[("registry", conc)]
            rows.append(
                [
                    "writes while seeding (model, version)",
                    conc,
                    "",
                    "",
                    f"{theirs:.1f}",
                    "",
                    "",
                    f"{ours:.1f}",
                    f"{ours / theirs:.2f}x",
                ]
            )
        cost = client_cost()
        print()
        print(
            "the client's own time per request, p50 against a socket that answers at once: "
            + ", ".join(f"{name} {ms:.2f} ms" for name, ms in cost.items())
        )
        print(
            f"{args.models} models x {args.versions} versions, {args.models * args.versions * 5} variants; "
            f"{args.workers} workers each; {args.requests} requests per call, fresh connection each, "
            f"client {args.client}"
        )
        print(
            table(["call", "conc", "MLflow p50 ms", "p95", "req/s", "ours p50 ms", "p95", "req/s", "ours/MLflow"], rows)
        )
        budget_rows = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--budget",
                    token,
                    "--models",
                    str(args.models),
                    "--versions",
                    str(args.versions),
                ],
                cwd=ROOT,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        in_process = {row[0]: float(row[2]) for row in budget_rows}
        print()
        print("what the serving stack allows: 3x MLflow beside the registry's floor (req/s, same concurrency),")
        print("and at concurrency 1 beside the floor plus the call's own time in process (the table below)")
        headers = ["call", "conc", "MLflow req/s", "3x that", "our floor req/s", "3x reachable"]
        headers += ["floor + in process req/s", "3x reachable"]
        print(table(headers, reach(result_by_conc, in_process)))
        print()
        print("in process, per request (median of 50):")
        print(table(["call", "queries", "total ms", "SQL ms", "Python beyond SQL ms"], budget_rows))
    finally:
        for proc in procs:
            stop(proc)


if __name__ == "__main__":
    main()
