"""Several replicas of each process on one PostgreSQL database and one bucket: two gunicorn
servers, two job workers (`manage.py db_worker`), two webhook senders, the prune commands run
from two places at once, two app copies starting together. Every process is real and started as scripts/run.sh and
docker-compose.yml start it; they share the test database and the moto bucket.

PostgreSQL only: SQLite is one file on one host, so there is nothing to replicate there, and it
lets one writer in at a time."""

import io
import re
import subprocess
import sys
import threading
from contextlib import ExitStack
from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.authtoken.models import Token

from geti_integration.models import ImportJob
from models_app.models import (
    Alias,
    AliasEvent,
    Artifact,
    ArtifactInspection,
    AuditEntry,
    Event,
    ModelVersion,
    UploadSession,
)
from models_app.tasks import inspect_artifact
from tests import geti_fake as fx
from tests.conftest import bucket_keys, free_port, open_multipart_uploads
from tests.processes import ROOT, database_url, gunicorn, manage, registry_env, start_worker, stop, wait_for
from tests.webhooks.conftest import Receiver

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="replicas share a PostgreSQL database (CI runs it)"),
    pytest.mark.django_db(transaction=True),
]

IMPORT = {
    "project_id": fx.WIDGETS,
    "models": [
        {"group_id": fx.WIDGETS_GROUP, "model_id": fx.WIDGETS_MODEL, "optimized_model_id": optimized}
        for optimized in (fx.WIDGETS_FP16, fx.WIDGETS_INT8)
    ],
}


@pytest.fixture
def geti():
    with fx.FakeGeti() as fake:
        yield fake


@pytest.fixture
def env(tmp_path, s3_endpoint, bucket, geti):
    """The environment every replica gets: the test database, the test bucket, the fake Geti."""
    return registry_env(
        tmp_path,
        s3_endpoint=s3_endpoint,
        bucket=bucket.name,
        GETI_HOST=geti.url,
        GETI_TOKEN=geti.token,
        REGISTRY_WEBHOOK_ALLOWED_NETWORKS="127.0.0.1/32",
        REGISTRY_WEBHOOK_POLL_SECONDS="0.2",
        WEB_CONCURRENCY=1,  # one process per server: the replicas are the servers, and the machine is small
    )


@pytest.fixture
def logs(tmp_path):
    """Where each process writes its output; a test reads them all back."""
    directory = tmp_path / "logs"
    directory.mkdir()
    return directory


@pytest.fixture
def processes():
    """Processes started by a test, stopped (SIGTERM) at its end."""
    started = []
    yield started
    for process in started:
        stop(process)


@pytest.fixture
def token(django_user_model):
    user = django_user_model.objects.create_superuser("operator", password="pw")
    return {"Authorization": f"Token {Token.objects.create(user=user).key}"}


def errors_logged(logs):
    text = "".join(path.read_text() for path in sorted(logs.iterdir()))
    return [line for line in text.splitlines() if re.search(r"Traceback|ERROR|CRITICAL", line)]


def test_a_geti_import_through_one_server_runs_once_with_two_workers_and_two_senders(
    env, geti, token, logs, processes, settings
):
    from webhooks.services import create_subscription

    settings.REGISTRY_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    receiver = Receiver()
    create_subscription(name="CI", url=receiver.url, event_types=["geti_import.finished", "geti_import.failed"])
    try:
        for name in ("worker-a", "worker-b"):
            start_worker(env, logs, processes, name)
        for name in ("webhooks-a", "webhooks-b"):
            processes.append(manage("deliver_webhooks", "--loop", env=env, log=logs / f"{name}.log"))
        with (
            gunicorn(env, free_port(), logs / "server-a.log") as server_a,
            gunicorn(env, free_port(), logs / "server-b.log") as server_b,
        ):
            response = requests.post(f"{server_a}/api/v1/geti/imports/", json=IMPORT, headers=token, timeout=30)
            assert response.status_code == 202, response.text
            jobs = ",".join(job["id"] for job in response.json()["jobs"])

            def states():  # as the other server reports them
                answer = requests.get(f"{server_b}/api/v1/geti/imports/?id={jobs}", headers=token, timeout=30)
                return sorted(job["state"] for job in answer.json()["results"])

            wait_for(lambda: states() == ["done", "done"], timeout=120, message="the imports never finished")
            wait_for(lambda: len(receiver.requests) >= 2, timeout=60, message="the webhooks never arrived")
            inspections = DBTaskResult.objects.filter(task_path=inspect_artifact.module_path)
            wait_for(
                lambda: list(inspections.values_list("status", flat=True)) == ["SUCCESSFUL"] * 2,
                timeout=60,
                message="the inspections never ran",
            )

        for optimized in (fx.WIDGETS_FP16, fx.WIDGETS_INT8):
            assert len(geti.requests_to(f"/optimized_models/{optimized}/export")) == 1
        assert ModelVersion.objects.count() == 1
        assert sorted(Artifact.objects.values_list("external_id", flat=True)) == sorted(
            [fx.WIDGETS_FP16, fx.WIDGETS_INT8]
        )
        assert list(ImportJob.objects.values_list("state", flat=True)) == ["done", "done"]
        for job in ImportJob.objects.all():
            task = DBTaskResult.objects.get(pk=job.task_id)
            assert (task.status, len(task.worker_ids)) == ("SUCCESSFUL", 1)
        assert [len(task.worker_ids) for task in inspections] == [1, 1]
        assert sorted(ArtifactInspection.objects.values_list("artifact__external_id", flat=True)) == sorted(
            [fx.WIDGETS_FP16, fx.WIDGETS_INT8]
        )
        assert Event.objects.filter(type="geti_import.finished").count() == 2
        assert not Event.objects.filter(type="geti_import.failed").exists()
        assert AuditEntry.objects.filter(action=AuditEntry.Action.IMPORT).count() == 2
        assert receiver.types() == ["geti_import.finished"] * 2
        assert len(set(receiver.ids())) == 2
    finally:
        receiver.close()
    assert errors_logged(logs) == []


def test_a_second_worker_starting_leaves_the_import_the_first_one_runs_alone(env, geti, token, logs, processes):
    geti.hold_downloads = threading.Event()
    try:
        start_worker(env, logs, processes, "worker-a")
        with gunicorn(env, free_port(), logs / "server.log") as server:
            body = {**IMPORT, "models": IMPORT["models"][:1]}
            response = requests.post(f"{server}/api/v1/geti/imports/", json=body, headers=token, timeout=30)
            assert response.status_code == 202, response.text
        [job] = ImportJob.objects.all()
        # The first worker is downloading: Geti sent the headers and holds the bytes back.
        wait_for(lambda: geti.requests_to("/export"), timeout=60, message="the first worker never started the import")

        output = start_worker(env, logs, processes, "worker-b")

        job.refresh_from_db()
        assert (job.state, output) == ("running", "Marked 0 stale Geti import(s) as failed.\n")
    finally:
        geti.hold_downloads.set()
    wait_for(lambda: ImportJob.objects.get(pk=job.pk).state != "running", timeout=60, message="the import never ended")
    job.refresh_from_db()
    assert (job.state, job.error) == ("done", "")
    assert list(Event.objects.filter(type__startswith="geti_import.").values_list("type", flat=True)) == [
        "geti_import.finished"
    ]
    assert errors_logged(logs) == []


def test_alias_moves_through_two_servers_at_once_form_one_chain(env, token, logs, processes):
    from models_app import services

    model = services.create_registered_model(name="person-detection")
    for label in ("1", "2", "3"):
        model.versions.create(version=label)
    alias_url = "/api/v1/registered-models/person-detection/aliases/production/"
    statuses, lock = [], threading.Lock()
    with ExitStack() as stack:
        servers = [stack.enter_context(gunicorn(env, free_port(), logs / f"server-{n}.log")) for n in range(2)]
        start = threading.Barrier(6)

        def move(index):
            session = requests.Session()
            start.wait(timeout=30)
            for n in range(8):
                target = ("1", "2", "3")[(index + n) % 3]
                answer = session.put(
                    servers[(index + n) % 2] + alias_url, json={"version": target}, headers=token, timeout=30
                )
                with lock:
                    statuses.append(answer.status_code)

        threads = [threading.Thread(target=move, args=(i,)) for i in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        history = requests.get(f"{servers[0]}{alias_url}history/?page_size=100", headers=token, timeout=30).json()

    assert len(statuses) == 48 and set(statuses) <= {200, 201}, statuses
    steps = [(e["from_version"], e["to_version"]) for e in reversed(history["results"])]
    assert steps[0][0] == ""
    for before, after in zip(steps, steps[1:]):
        assert after[0] == before[1], steps
    assert Alias.objects.get(name="production").version.version == steps[-1][1]
    assert AliasEvent.objects.count() == len(steps) == history["count"]
    audited = AuditEntry.objects.filter(object_type="alias").order_by("id")
    assert [tuple(v or "" for v in a.changes["version"]) for a in audited] == steps
    assert errors_logged(logs) == []


def test_the_prune_commands_run_from_two_places_at_once_remove_each_leftover_once(
    env, bucket, logs, processes, django_user_model
):
    from models_app import services
    from models_app.direct_uploads import start_direct_upload

    user = django_user_model.objects.create_superuser("operator", password="pw")
    live = services.register_artifact(model_name="live", version="1", fileobj=io.BytesIO(b"weights"), user=user)
    pending = start_direct_upload(user=user, model_name="uploads", version="pending", size=10, filename="m.bin")
    expired = [
        start_direct_upload(user=user, model_name="uploads", version=str(n), size=10, filename="m.bin")
        for n in range(10)
    ]
    UploadSession.objects.exclude(pk=pending.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    client = bucket.meta.client
    strays = [f"artifacts/stray-{n}/model.bin" for n in range(10)]
    for key in strays:
        client.create_multipart_upload(Bucket=bucket.name, Key=key)
    orphans = [f"artifacts/orphan-{n}/model.bin" for n in range(20)]
    for key in orphans:
        client.put_object(Bucket=bucket.name, Key=key, Body=b"left behind")

    runs = [
        manage(command, "--older-than-hours", "0", env=env, log=logs / f"{command}-{n}.log")
        for command in ("prune_uploads", "prune_artifacts")
        for n in range(2)
    ]
    processes.extend(runs)

    assert [run.wait(60) for run in runs] == [0, 0, 0, 0]
    output = "".join(path.read_text() for path in sorted(logs.iterdir()))
    for session in expired:
        assert output.count(f"aborting expired upload {session.id} ") == 1
    for key in strays:
        assert output.count(f"aborting stray upload of {key}\n") == 1
    for key in orphans:
        assert output.count(f"deleting {key}\n") == 1
    assert bucket_keys(bucket) == [live.file.name]
    assert [upload["UploadId"] for upload in open_multipart_uploads(bucket)] == [pending.upload_id]
    assert UploadSession.objects.get(pk=pending.pk).state == "pending"
    assert set(UploadSession.objects.exclude(pk=pending.pk).values_list("state", flat=True)) == {"aborted"}
    assert Artifact.objects.get().pk == live.pk
    assert errors_logged(logs) == []


@pytest.fixture
def empty_database():
    """A database with no tables on the test database's server, dropped afterwards; its URL."""
    name = f"{connection.settings_dict['NAME']}_empty"
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    yield database_url(name)
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_two_app_copies_starting_at_once_on_an_empty_database_both_start(empty_database, tmp_path, logs):
    """What the Docker image runs before gunicorn, twice at the same moment: the schema is made
    once, the admin account created once, and both copies go on to serve."""
    env = registry_env(tmp_path, DATABASE_URL=empty_database, REGISTRY_ADMIN_PASSWORD="first-start")
    startup = f"{sys.executable} manage.py migrate --noinput && {sys.executable} manage.py ensure_admin"
    copies = [
        subprocess.Popen(["sh", "-c", startup], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(2)
    ]
    outputs = [copy.communicate(timeout=120)[0].decode() for copy in copies]

    assert [copy.returncode for copy in copies] == [0, 0], outputs
    assert all("user 'admin', password first-start" in output for output in outputs)
    assert sum(output.count("Applying models_app.0001_initial... OK") for output in outputs) == 1
