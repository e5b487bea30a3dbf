"""Import one big optimized model from Geti: time, throughput and the importer's peak memory.

    python bench/geti_import.py [--size-mib 200]

Runs the importer (`geti_integration.importer.run_import`, what the worker runs) against the fake
Geti server of the tests (real HTTP on loopback, the export zip generated on the fly), storing into
local files on a fresh SQLite database in a temporary directory, so nothing else is touched. The
import runs twice: once timed, once under tracemalloc for the peak of Python allocations, which
must stay a few MiB whatever the size, because the file streams through in 1 MiB chunks.
"""

import argparse
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
work = tempfile.TemporaryDirectory(prefix="bench-geti-import-")
os.environ["REGISTRY_VAR_DIR"] = work.name
for name in ("DATABASE_URL", "S3_BUCKET", "S3_ENDPOINT_URL"):
    os.environ.pop(name, None)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_project.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from geti_integration.importer import run_import, start_imports  # noqa: E402
from geti_integration.models import ImportJob  # noqa: E402
from tests import geti_fake as fx  # noqa: E402

MiB = 1 << 20


def import_once(fake, size):
    """Import WIDGETS_FP16 at ``size`` bytes; return the finished job."""
    fake.set_size(fx.WIDGETS_FP16, size)
    [job] = start_imports(
        project_id=fx.WIDGETS,
        models=[{"group_id": fx.WIDGETS_GROUP, "model_id": fx.WIDGETS_MODEL, "optimized_model_id": fx.WIDGETS_FP16}],
    )
    run_import(job.pk)
    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE, job.error
    assert job.artifact.sha256 == fake.export_digest(fx.WIDGETS_FP16).sha256
    job.artifact.version.registered_model.delete()  # the next run imports it afresh
    return job


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=200)
    args = parser.parse_args()
    size = args.size_mib * MiB
    call_command("migrate", verbosity=0)
    with work, fx.FakeGeti() as fake:
        os.environ["GETI_HOST"], os.environ["GETI_TOKEN"] = fake.url, fake.token
        started = time.perf_counter()
        import_once(fake, size)
        seconds = time.perf_counter() - started
        tracemalloc.start()
        started = time.perf_counter()
        try:
            import_once(fake, size)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            traced_seconds = time.perf_counter() - started
            tracemalloc.stop()
    print(f"Geti import of a {args.size_mib} MiB model (fake Geti on loopback, local files, SQLite)")
    print(f"  time {seconds:.1f} s, {args.size_mib / seconds:.0f} MiB/s")
    print(f"  peak Python allocations during the import {peak / MiB:.1f} MiB (tracemalloc; {traced_seconds:.1f} s)")


if __name__ == "__main__":
    main()
