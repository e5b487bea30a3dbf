"""Metadata bench: 100,000 variants on PostgreSQL behind gunicorn; list, search, get and register
at concurrency 1 and 8, with the query plans of the main lists.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/registry_bench python bench/metadata.py

$DATABASE_URL defaults to that database (created when missing). Seeding is skipped when the
database already holds the variants. Artifacts are stored as local files (this measures metadata).
"""

import argparse
import os
import random
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, base_env, issue_token, manage, percentile, start_gunicorn, stop, table  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/registry_bench"
PRECISIONS, DEVICES, FORMATS = ["FP32", "FP16", "INT8", "INT4"], ["CPU", "GPU", "NPU"], ["openvino", "onnx"]
CATEGORIES = ["Detection", "Classification", "Segmentation", "Anomaly"]


def ensure_database(url):
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(total, models=1000):
    """Bulk-insert ``total`` variants: ``models`` registered models, versions of 4 variants each."""
    from django.db import connection
    from django.utils import timezone

    from models_app.models import Artifact, ModelVersion, RegisteredModel

    if Artifact.objects.count() >= total:
        return None
    start = time.perf_counter()
    Artifact.objects.all().delete()
    ModelVersion.objects.all().delete()
    RegisteredModel.objects.all().delete()
    rng = random.Random(7)
    now = timezone.now()
    registered = RegisteredModel.objects.bulk_create(
        [
            RegisteredModel(
                name=f"model-{i:05d}",
                description=f"{rng.choice(CATEGORIES)} model number {i}",
                tags={"team": f"team-{i % 20}"},
            )
            for i in range(models)
        ],
        batch_size=5000,
    )
    per_version = 4
    versions = []
    for n in range(total // per_version):
        model = registered[n % models]
        versions.append(
            ModelVersion(
                registered_model=model,
                version=str(n // models + 1),
                category=rng.choice(CATEGORIES),
                architecture=rng.choice(["YOLOX", "ResNet50", "EfficientNet", "SSD", "UNet"]),
                description=f"release {n} of {model.name}, trained on dataset-{rng.randint(1, 500)}",
                labels=[rng.choice(["person", "car", "dog", "cat", "bicycle"])],
                project_name=f"project-{n % 300}",
                origin=rng.choice(["upload", "geti"]),
            )
        )
    versions = ModelVersion.objects.bulk_create(versions, batch_size=5000)
    artifacts = []
    for n, version in enumerate(versions):
        for k in range(per_version):
            artifacts.append(
                Artifact(
                    version=version,
                    precision=PRECISIONS[k],
                    target_device=DEVICES[(n + k) % 3],
                    format=FORMATS[(n + k) % 2],
                    score=rng.random(),
                    size=rng.randint(10**6, 10**9),
                    sha256=uuid.uuid4().hex * 2,
                    file=f"artifacts/{uuid.uuid4()}/model.bin",
                    created_at=now,
                    original_filename="model.bin",
                )
            )
            if len(artifacts) >= 10000:
                Artifact.objects.bulk_create(artifacts)
                artifacts = []
    Artifact.objects.bulk_create(artifacts)
    with connection.cursor() as cursor:
        # What autovacuum does soon after a bulk load: statistics for the planner, and the
        # visibility map that lets sorted, filtered pages be read from the indexes alone.
        cursor.execute("VACUUM ANALYZE")
    return time.perf_counter() - start


def plans(token):
    """EXPLAIN ANALYZE of every query the main list requests make, captured in-process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Token {token}")
    out = []
    for url in PLAN_URLS:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        out.append(f"### GET {url}  ({len(ctx.captured_queries)} queries)")
        for query in ctx.captured_queries:
            if (
                not query["sql"].lstrip().upper().startswith("SELECT")
                or "django_session" in query["sql"]
                or "authtoken" in query["sql"]
            ):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + query["sql"])
                out.append(query["sql"][:300] + (" ..." if len(query["sql"]) > 300 else ""))
                out.extend("    " + row[0] for row in cursor.fetchall())
        out.append("")
    return "\n".join(out)


PLAN_URLS = [
    "/api/v1/artifacts/?format=onnx&precision=int8&target_device=npu&ordering=-created_at&page_size=50&page=3",
    "/api/v1/artifacts/?page_size=50",
    "/api/v1/artifacts/?search=model-00042&page_size=50",
    "/api/v1/versions/?search=dataset-123&page_size=50",
    "/api/v1/registered-models/?name=0042&ordering=-updated_at",
]


def run(base, token, scenario, make_request, concurrency, requests_per_worker):
    latencies, errors, lock = [], [], threading.Lock()

    def worker(seed_):
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        rng = random.Random(seed_)
        for _ in range(requests_per_worker):
            start = time.perf_counter()
            response = make_request(session, rng)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if response.status_code >= 400:
                    errors.append(response.status_code)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ms = [x * 1000 for x in latencies]
    return [
        scenario,
        concurrency,
        len(ms),
        f"{percentile(ms, 50):.1f}",
        f"{percentile(ms, 95):.1f}",
        f"{len(ms) / wall:.0f}",
        len(errors),
    ]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--variants", type=int, default=100_000)
    parser.add_argument(
        "--requests",
        type=int,
        default=int(os.environ.get("BENCH_REQUESTS", 200)),
        help="requests per scenario at concurrency 1 (8 workers send this many each / 4)",
    )
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains this text")
    parser.add_argument("--no-plans", action="store_true", help="skip printing the query plans")
    args = parser.parse_args()
    os.environ.setdefault("DATABASE_URL", DEFAULT_DB)
    if not os.environ["DATABASE_URL"].startswith("postgres"):
        sys.exit("bench/metadata.py measures PostgreSQL: set DATABASE_URL=postgres://...")
    ensure_database(os.environ["DATABASE_URL"])
    work = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    env = base_env(REGISTRY_VAR_DIR=work / "var", LOG_LEVEL="WARNING")
    env.pop("S3_BUCKET", None)
    manage(env, "migrate", "--noinput")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")
    os.environ["REGISTRY_VAR_DIR"] = str(work / "var")
    os.environ.pop("S3_BUCKET", None)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    seconds = seed(args.variants)
    print(
        f"\nSeeded {args.variants} variants in {seconds:.1f}s"
        if seconds
        else f"\nUsing the {args.variants} variants already in the database"
    )
    manage(env, "ensure_admin", "--url", "http://127.0.0.1")
    token = issue_token(env)
    from models_app.models import Artifact

    ids = [str(i) for i in Artifact.objects.values_list("id", flat=True)[:5000]]
    if not args.no_plans:
        print("\nQuery plans\n")
        print(plans(token))

    server, base = start_gunicorn(env, workers=2, threads=4)
    scenarios = {
        "list filtered+sorted page of 50": lambda s, r: s.get(
            f"{base}/api/v1/artifacts/?format={r.choice(FORMATS)}&precision={r.choice(PRECISIONS).lower()}"
            f"&ordering=-score&page_size=50&page={r.randint(1, 20)}"
        ),
        "list unfiltered page of 50": lambda s, r: s.get(
            f"{base}/api/v1/artifacts/?page_size=50&page={r.randint(1, 50)}"
        ),
        "search artifacts": lambda s, r: s.get(
            f"{base}/api/v1/artifacts/?search=model-{r.randint(0, 999):05d}&page_size=50"
        ),
        "search versions": lambda s, r: s.get(
            f"{base}/api/v1/versions/?search=dataset-{r.randint(1, 500)}&page_size=50"
        ),
        "get artifact": lambda s, r: s.get(f"{base}/api/v1/artifacts/{r.choice(ids)}/"),
        "register artifact": lambda s, r: s.post(
            f"{base}/api/v1/artifacts/",
            files={"file": ("m.bin", b"m" * 1024)},
            data={"registered_model": f"bench-{r.randint(0, 99)}", "version": uuid.uuid4().hex[:12]},
        ),
    }
    rows = []
    try:
        for name, make in scenarios.items():
            if args.only not in name:
                continue
            # Warm-up, not counted: every server thread opens its database connection (and
            # PostgreSQL loads its catalog caches for it) on its first requests.
            run(base, token, name, make, 8, 5)
            for concurrency in (1, 8):
                per_worker = args.requests if concurrency == 1 else max(args.requests // 4, 10)
                rows.append(run(base, token, name, make, concurrency, per_worker))
    finally:
        stop(server)
    print(f"Metadata: {Artifact.objects.count()} variants, gunicorn 2 gthread workers x 4 threads, PostgreSQL\n")
    print(table(["request", "concurrency", "n", "p50 ms", "p95 ms", "req/s", "errors"], rows))
    print()


if __name__ == "__main__":
    main()
