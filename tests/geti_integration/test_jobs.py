"""Import jobs run outside the request: queued in the database, run by `manage.py db_worker`."""

import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from geti_integration import importer
from geti_integration.importer import start_imports
from geti_integration.models import ImportJob
from geti_integration.tasks import import_geti_model, watch_geti_import
from models_app.models import Event
from tests import geti_fake as fx
from tests.processes import ROOT, WORKER_STARTUP

WIDGETS_FP16 = {"group_id": fx.WIDGETS_GROUP, "model_id": fx.WIDGETS_MODEL, "optimized_model_id": fx.WIDGETS_FP16}


def run_worker_once():
    """`manage.py db_worker --batch` without its signal handlers: run every queued task, then stop."""
    Worker(
        queue_names=["default"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    ).run()


@pytest.mark.django_db(transaction=True)
def test_an_import_is_queued_in_the_database_and_run_by_the_worker(geti, bucket):
    [job] = start_imports(project_id=fx.WIDGETS, models=[WIDGETS_FP16])

    # Queued: the job and its task are rows; nothing ran in this process.
    task = DBTaskResult.objects.get(pk=job.task_id)
    assert task.task_path == import_geti_model.module_path
    assert task.args_kwargs == {"args": [str(job.pk)], "kwargs": {}}
    assert ImportJob.objects.get(pk=job.pk).state == ImportJob.State.QUEUED
    assert not geti.requests_to("/export")

    run_worker_once()

    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE, job.error
    assert job.artifact.sha256 == geti.export_digest(fx.WIDGETS_FP16).sha256
    task.refresh_from_db()
    assert task.status == "SUCCESSFUL"
    assert task.return_value == "done"


@pytest.mark.django_db(transaction=True)
def test_a_failed_import_is_a_successful_task_with_a_failed_job(geti, bucket):
    [job] = start_imports(
        project_id=fx.WIDGETS,
        models=[{"group_id": fx.PURGED_GROUP, "model_id": fx.PURGED_MODEL, "optimized_model_id": fx.PURGED_FP16}],
    )

    run_worker_once()

    job.refresh_from_db()
    assert job.state == ImportJob.State.FAILED
    assert DBTaskResult.objects.get(pk=job.task_id).return_value == "failed"


@pytest.mark.django_db
def test_the_stale_jobs_command_fails_every_running_job_with_all(capsys):
    fields = {"project_id": fx.WIDGETS, "group_id": fx.WIDGETS_GROUP, "model_id": fx.WIDGETS_MODEL}
    from django.utils import timezone

    running = ImportJob.objects.create(
        **fields, optimized_model_id=fx.WIDGETS_FP16, state=ImportJob.State.RUNNING, heartbeat_at=timezone.now()
    )
    queued = ImportJob.objects.create(**fields, optimized_model_id=fx.WIDGETS_INT8)

    call_command("fail_stale_geti_imports")
    assert ImportJob.objects.get(pk=running.pk).state == ImportJob.State.RUNNING  # it still reports

    call_command("fail_stale_geti_imports", "--all")

    assert ImportJob.objects.get(pk=running.pk).state == ImportJob.State.FAILED
    assert ImportJob.objects.get(pk=queued.pk).state == ImportJob.State.QUEUED
    assert "Marked 1 stale Geti import(s) as failed." in capsys.readouterr().out


@pytest.mark.django_db(transaction=True)
def test_a_running_import_has_a_watch_queued_for_when_its_worker_would_be_silent(geti, bucket, settings):
    [job] = start_imports(project_id=fx.WIDGETS, models=[WIDGETS_FP16])
    run_worker_once()

    job.refresh_from_db()
    assert job.state == ImportJob.State.DONE
    [watch] = DBTaskResult.objects.filter(task_path=watch_geti_import.module_path)
    assert watch.args_kwargs == {"args": [str(job.pk)], "kwargs": {}}
    assert watch.status == "READY"
    expected = job.started_at + timedelta(seconds=settings.GETI_IMPORT_STALE_SECONDS + 1)
    assert abs(watch.run_after - expected) < timedelta(seconds=1)
    # Its time come, the watch finds the job over and queues nothing more.
    assert importer.watch(job.pk) == "done"
    assert DBTaskResult.objects.filter(task_path=watch_geti_import.module_path).count() == 1


@pytest.mark.django_db
def test_the_watch_fails_a_silent_job_and_looks_again_later_at_one_that_beats(settings):
    fields = {"project_id": fx.WIDGETS, "group_id": fx.WIDGETS_GROUP, "model_id": fx.WIDGETS_MODEL}
    now = timezone.now()
    silent = ImportJob.objects.create(
        **fields, optimized_model_id=fx.WIDGETS_FP16, state="running", heartbeat_at=now - timedelta(hours=1)
    )
    beating = ImportJob.objects.create(**fields, optimized_model_id=fx.WIDGETS_INT8, state="running", heartbeat_at=now)

    assert importer.watch(silent.pk) == "failed"
    assert "worker" in ImportJob.objects.get(pk=silent.pk).error
    assert not DBTaskResult.objects.exists()

    assert importer.watch(beating.pk) == "running"
    [watch] = DBTaskResult.objects.all()
    assert watch.run_after == now + timedelta(seconds=settings.GETI_IMPORT_STALE_SECONDS + 1)
    assert ImportJob.objects.get(pk=beating.pk).state == "running"


@pytest.mark.django_db(transaction=True)
def test_a_worker_that_comes_back_after_its_job_was_failed_leaves_it_failed(geti, bucket):
    """A worker cut off for longer than the stale time (a paused VM, a network split) finds its
    job failed when it comes back: the job stays failed and is announced once."""
    [job] = start_imports(project_id=fx.WIDGETS, models=[WIDGETS_FP16])
    geti.hold_downloads = threading.Event()

    def run():
        try:
            run_worker_once()
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not geti.requests_to("/export") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert importer.fail_stale_jobs(0) == 1
    finally:
        geti.hold_downloads.set()
        worker.join(60)

    job.refresh_from_db()
    assert job.state == ImportJob.State.FAILED
    assert list(Event.objects.filter(type__startswith="geti_import.").values_list("type", flat=True)) == [
        "geti_import.failed"
    ]


def test_every_worker_starts_with_the_stale_jobs_command_that_spares_running_imports():
    for path in ("scripts/run.sh", "docker-compose.yml"):
        text = (ROOT / path).read_text()
        assert WORKER_STARTUP in text and "fail_stale_geti_imports --all" not in text, path


@pytest.mark.django_db
def test_the_import_command_imports_a_project_s_openvino_models(geti, bucket, capsys):
    call_command("import_geti_models", fx.SCRATCHES, "--format", "openvino", "--run")

    output = capsys.readouterr().out
    assert f"{fx.SCRATCHES_FP32} PADIM OpenVINO FP32: done" in output
    assert sorted(ImportJob.objects.values_list("optimized_model_id", "state")) == [
        (fx.SCRATCHES_FP32, "done"),
        (fx.SCRATCHES_FP16, "done"),
    ]


@pytest.mark.django_db
def test_the_import_command_queues_chosen_models_for_the_worker(geti, bucket):
    call_command("import_geti_models", fx.WIDGETS, fx.WIDGETS_INT8)

    assert list(ImportJob.objects.values_list("optimized_model_id", "state")) == [(fx.WIDGETS_INT8, "queued")]


@pytest.mark.django_db
def test_the_import_command_refuses_unknown_models_and_an_integration_that_is_off(geti, monkeypatch):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="that can be imported"):
        call_command("import_geti_models", fx.WIDGETS, fx.PURGED_FP16)
    monkeypatch.delenv("GETI_HOST")
    with pytest.raises(CommandError, match="The Geti integration is off"):
        call_command("import_geti_models", fx.WIDGETS)
    assert ImportJob.objects.count() == 0
