"""A Geti import announces its end: geti_import.finished or geti_import.failed, with the job."""

import pytest

from geti_integration.importer import start_imports
from models_app.models import Artifact, Event
from tests import geti_fake as fx

from .conftest import run_queued

pytestmark = pytest.mark.django_db


def test_a_finished_import_announces_the_registered_artifact(geti, bucket, user):
    [job] = start_imports(
        project_id=fx.WIDGETS,
        models=[{"group_id": fx.WIDGETS_GROUP, "model_id": fx.WIDGETS_MODEL, "optimized_model_id": fx.WIDGETS_FP16}],
        user=user,
    )
    run_queued()
    artifact = Artifact.objects.select_related("version__registered_model").get()
    types = list(Event.objects.order_by("id").values_list("type", flat=True))
    assert types == ["registered_model.created", "version.created", "artifact.created", "geti_import.finished"]
    finished = Event.objects.get(type="geti_import.finished")
    assert finished.registered_model_id == artifact.version.registered_model_id
    assert finished.payload["job"]["id"] == str(job.pk) and finished.payload["job"]["state"] == "done"
    assert finished.payload["artifact"] == {"id": str(artifact.pk), "external_id": fx.WIDGETS_FP16}
    assert finished.payload["version"] == {"id": str(artifact.version.pk), "version": artifact.version.version}
    assert finished.payload["actor"] == {"id": user.pk, "username": user.username}


def test_a_failed_import_announces_the_error(geti, bucket):
    [job] = start_imports(
        project_id=fx.WIDGETS,
        models=[{"group_id": fx.PURGED_GROUP, "model_id": fx.PURGED_MODEL, "optimized_model_id": fx.PURGED_FP16}],
    )
    run_queued()
    failed = Event.objects.get()
    assert failed.type == "geti_import.failed"
    assert failed.payload["job"]["id"] == str(job.pk) and failed.payload["job"]["error"]
    assert failed.payload["artifact"] is None and failed.registered_model_id is None
