"""Geti imports are inspected like uploads: the importer registers through the same service."""

import pytest
from django_tasks_db.models import DBTaskResult

from models_app.models import ArtifactInspection
from models_app.tasks import inspect_artifact
from tests import geti_fake as fx

from .test_importer import import_one

pytestmark = pytest.mark.django_db


def test_an_imported_geti_export_is_queued_for_inspection_and_inspected(
    geti, bucket, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = import_one(fx.WIDGETS, fx.WIDGETS_GROUP, fx.WIDGETS_MODEL, fx.WIDGETS_FP16)

    task = DBTaskResult.objects.get(task_path=inspect_artifact.module_path)
    assert task.args_kwargs["args"] == [str(job.artifact_id)]
    assert inspect_artifact.call(*task.args_kwargs["args"]) == "done"
    inspection = ArtifactInspection.objects.get(artifact=job.artifact)
    assert (inspection.format, inspection.ir_version) == ("openvino", 11)
    files = {f["name"]: f["size"] for f in inspection.details["files"]}
    assert inspection.details["model_file"] in files
    assert files[inspection.details["model_file"].replace(".xml", ".bin")] > 0
