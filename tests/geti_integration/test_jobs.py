"""Import jobs run outside the request: queued in the database, run by `manage.py db_worker`."""

import pytest
from django.core.management import call_command
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from geti_integration.importer import start_imports
from geti_integration.models import ImportJob
from geti_integration.tasks import import_geti_model
from tests import geti_fake as fx

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
