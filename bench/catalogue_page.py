"""Time the catalogue page over a large catalogue.

    DATABASE_URL=postgres://... python bench/catalogue_page.py [--models 20000] [--keep]

Creates N registered models named ``bench-*`` (2 versions, 3 variants each; rows only, no
files), renders the catalogue with a few typical filter sets through Django's test client, and
prints the time and the query count of each. The rows are removed afterwards unless --keep.
"""

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

from models_app.markup import plain_snippet  # noqa: E402
from models_app.models import Artifact, ModelVersion, RegisteredModel  # noqa: E402

CASES = [
    ("home", {}),
    ("search", {"q": "bench-01"}),
    ("int8 on npu", {"precision": "INT8", "target_device": "NPU"}),
    ("category + sort", {"category": "Detection", "sort": "updated"}),
    ("tag", {"tag": "team:vision"}),
    ("page 2", {"page": "2"}),
    ("page 40", {"page": "40"}),
    ("table view", {"view": "table"}),
]


def populate(count):
    # Descriptions as teams write them (a heading, prose, a table); bulk_create skips save(), so
    # the snippet lists show is computed here as save() would.
    description = (
        "# bench\n\nDetector for edge cameras, trained in Geti and exported to **OpenVINO**.\n\n"
        "| Dataset | Images |\n|---|---|\n| retail | 18,400 |\n\n- INT8 builds need OpenVINO 2024.3 on NPU\n"
    )
    models = [
        RegisteredModel(
            name=f"bench-{i:06d}",
            description=description.replace("bench", f"bench-{i:06d}"),
            description_snippet=plain_snippet(description),
            tags={"team": "vision" if i % 2 else "audio"},
        )
        for i in range(count)
    ]
    RegisteredModel.objects.bulk_create(models, batch_size=2000)
    versions = []
    for i, model in enumerate(models):
        for v in ("1", "2"):
            versions.append(
                ModelVersion(
                    registered_model=model,
                    version=v,
                    category=("Detection", "Classification", "Segmentation")[i % 3],
                    origin="geti" if i % 5 == 0 else "upload",
                )
            )
    ModelVersion.objects.bulk_create(versions, batch_size=5000)
    artifacts = []
    for i, version in enumerate(versions):
        for precision, device in (("FP32", "CPU"), ("FP16", "GPU"), ("INT8", "NPU" if i % 4 else "CPU")):
            artifacts.append(
                Artifact(
                    version=version,
                    precision=precision,
                    target_device=device,
                    size=1000 + i,
                    sha256=uuid.uuid4().hex * 2,
                    score=(i % 100) / 100,
                    file=f"artifacts/{uuid.uuid4()}/model.bin",
                )
            )
    Artifact.objects.bulk_create(artifacts, batch_size=5000)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=int, default=20000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    setup_test_environment()
    if not RegisteredModel.objects.filter(name__startswith="bench-").exists():
        started = time.perf_counter()
        populate(args.models)
        print(f"populated {args.models} models in {time.perf_counter() - started:.1f}s")
    total = RegisteredModel.objects.count()
    print(f"{connection.vendor}: {total} models, {Artifact.objects.count()} artifacts")
    client = Client()
    client.get("/")  # warm up
    try:
        for name, params in CASES:
            timings = []
            for _ in range(3):
                with CaptureQueriesContext(connection) as queries:
                    started = time.perf_counter()
                    response = client.get("/", params)
                    timings.append(time.perf_counter() - started)
                assert response.status_code == 200, response.status_code
            print(f"{name:18s} best {min(timings) * 1000:7.1f} ms  queries {len(queries)}")
    finally:
        if not args.keep:
            RegisteredModel.objects.filter(name__startswith="bench-").delete()


if __name__ == "__main__":
    main()
