"""Inspections end to end: registered through every writer, run by the worker over the S3
endpoint, shown by the API, the version page and compare, filtered, and backfilled."""

import io
import pickle
import zipfile

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from models_app.inspection import inspect_file
from models_app.inspection.service import READ_BUFFER_BYTES, StoredFileReader, inspect_artifact_by_id
from models_app.models import Artifact, ArtifactInspection
from models_app.tasks import inspect_artifact
from tests.geti_integration.test_jobs import run_worker_once

from .model_files import geti_export, onnx_model, openvino_ir, zip_of
from .test_inspection import BILLION_LAUGHS, WritesAFile

pytestmark = pytest.mark.django_db

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


@pytest.fixture
def inspected(upload, settings, django_capture_on_commit_callbacks):
    """Upload through the API and run the inspection as its commit queues it (the tasks run
    immediately, as with TASKS_BACKEND=...ImmediateBackend); returns the artifact's API body."""
    settings.TASKS = IMMEDIATE

    def _upload(content, name, **fields):
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(content, name=name, **fields)
        assert response.status_code == 201, response.content
        return response.json()

    return _upload


def detail(api_client, body):
    return api_client.get(f"/api/v1/artifacts/{body['id']}/").json()


@pytest.mark.django_db(transaction=True)
def test_an_upload_is_queued_on_commit_and_the_worker_inspects_it(api_client, upload, bucket):
    response = upload(onnx_model(), name="detector.onnx", format="onnx")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["inspection"]["status"] == "pending"

    task = DBTaskResult.objects.get(task_path=inspect_artifact.module_path)
    assert task.args_kwargs == {"args": [body["id"]], "kwargs": {}}
    assert not ArtifactInspection.objects.exists()

    run_worker_once()

    task.refresh_from_db()
    assert (task.status, task.return_value) == ("SUCCESSFUL", "done")
    inspection = detail(api_client, body)["inspection"]
    assert inspection["status"] == "done" and inspection["reason"] == ""
    assert (inspection["format"], inspection["weight_precision"]) == ("onnx", "FP32")
    assert (inspection["opset"], inspection["parameter_count"]) == (17, 224)
    assert inspection["inputs"] == [{"name": "image", "shape": ["N", 3, 224, 224], "element_type": "f32"}]
    assert inspection["outputs"] == [{"name": "scores", "shape": ["N", 8, 222, 222], "element_type": "f32"}]
    assert inspection["warnings"] == []
    assert inspection["details"]["op_counts"] == {"Conv": 1, "Relu": 1}
    assert inspection["details"]["producer"] == {"name": "pytorch", "version": "2.4.0"}
    # Lists carry the inspection without its details.
    [row] = api_client.get("/api/v1/artifacts/").json()["results"]
    assert row["inspection"]["inputs"] == inspection["inputs"] and "details" not in row["inspection"]


def test_a_declared_fp32_whose_weights_are_fp16_is_flagged_in_the_api_and_on_the_page(api_client, client, inspected):
    body = inspected(geti_export(weights="f16"), "export.zip", precision="FP32", format="openvino")

    inspection = detail(api_client, body)["inspection"]
    assert inspection["weight_precision"] == "FP16"
    assert inspection["warnings"] == ["Declared precision FP32, but the weights are FP16."]
    assert inspection["details"]["model_file"] == "model.xml"
    assert [f["name"] for f in inspection["details"]["files"]] == ["model.xml", "model.bin", "config.json"]

    page = client.get("/m/person-detection/v/1/").content.decode()
    assert "Declared precision FP32, but the weights are FP16." in page
    assert "<code>image</code></td><td>f32</td><td>[?, 3, 224, 224]</td>" in page
    assert "<code>scores</code></td><td>f32</td><td>[?, 8, 222, 222]</td>" in page


def test_a_precision_corrected_afterwards_clears_the_warning(api_client, inspected):
    body = inspected(geti_export(weights="f16"), "export.zip", precision="FP32")

    response = api_client.patch(f"/api/v1/artifacts/{body['id']}/", {"precision": "FP16"}, format="json")

    assert response.status_code == 200
    assert response.json()["inspection"]["warnings"] == []


def test_a_declared_onnx_that_is_an_ir_is_flagged(api_client, inspected):
    body = inspected(geti_export(), "export.zip", format="onnx")
    assert detail(api_client, body)["inspection"]["warnings"] == ["Declared format onnx, but the file is openvino."]


def test_an_int8_ir_declared_int8_has_no_warning(api_client, inspected):
    xml, _ = openvino_ir(weights="i8", fake_quantize=True)
    body = inspected(xml, "model.xml", precision="INT8")
    inspection = detail(api_client, body)["inspection"]
    assert (inspection["weight_precision"], inspection["warnings"]) == ("INT8", [])


def test_a_pickle_upload_is_labelled_and_never_loaded(api_client, inspected, tmp_path):
    marker = tmp_path / "unpickled"
    body = inspected(pickle.dumps(WritesAFile(marker)), "model.pt", format="onnx")

    inspection = detail(api_client, body)["inspection"]
    assert (inspection["status"], inspection["format"]) == ("not_applicable", "pickle")
    assert "never opened" in inspection["reason"]
    assert inspection["warnings"] == ["Declared format onnx, but the file is pickle-based."]
    assert not marker.exists()


def test_a_hostile_file_ends_as_a_failed_inspection_with_a_reason(api_client, client, inspected):
    body = inspected(BILLION_LAUGHS, "model.xml")

    inspection = detail(api_client, body)["inspection"]
    assert inspection["status"] == "failed"
    assert "could not be parsed safely" in inspection["reason"]
    assert inspection["inputs"] == [] and inspection["warnings"] == []
    assert (
        "Inspection failed: The IR&#x27;s XML could not be parsed safely"
        in client.get("/m/person-detection/v/1/").content.decode()
    )


def test_a_truncated_onnx_upload_fails_cleanly(api_client, inspected):
    body = inspected(onnx_model()[:-20], "model.onnx", format="onnx")
    inspection = detail(api_client, body)["inspection"]
    assert inspection["status"] == "failed" and "truncated" in inspection["reason"]


def test_raw_uploads_are_inspected_too(api_client, settings, bucket, django_capture_on_commit_callbacks):
    settings.TASKS = IMMEDIATE
    xml, _ = openvino_ir(weights="f16")
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.put(
            "/api/v1/artifacts/upload/model.xml?registered_model=yolo&version=3&precision=FP16",
            xml,
            content_type="application/octet-stream",
        )
    assert response.status_code == 201, response.content
    assert Artifact.objects.get().inspection.weight_precision == "FP16"


@pytest.mark.django_db(transaction=True)
def test_intel_clients_uploads_are_inspected_too(live_server, user, bucket, settings):
    from rest_framework.authtoken.models import Token

    from .test_intel_compat import IntelClient

    settings.TASKS = IMMEDIATE
    with IntelClient(live_server.url, Token.objects.create(user=user).key) as intel:
        response = intel.register(geti_export(weights="f16"), filename="m.zip", precision="FP16")
    assert response.status_code == 201, response.text
    inspection = ArtifactInspection.objects.get()
    assert (inspection.status, inspection.format, inspection.weight_precision) == ("done", "openvino", "FP16")


def test_an_artifact_deleted_before_its_inspection_is_skipped(artifact):
    artifact_id = str(artifact.pk)
    artifact.delete()
    assert inspect_artifact.call(artifact_id) == "deleted"
    assert not ArtifactInspection.objects.exists()


def test_a_zip_on_s3_is_read_in_ranges_not_whole(upload, bucket):
    """A Geti-style zip with 8 MiB of weights: the directory and the .xml are read, not the .bin."""
    xml, _ = openvino_ir()
    content = zip_of({"model.xml": xml, "model.bin": bytes(8 * 1024 * 1024)}, zipfile.ZIP_STORED)
    response = upload(content, name="big.zip")
    artifact = Artifact.objects.get(pk=response.json()["id"])
    reader = StoredFileReader(artifact.file.name, artifact.size, budget=artifact.size)

    report = inspect_file(io.BufferedReader(reader, READ_BUFFER_BYTES), "big.zip", artifact.size)

    assert report["parameter_count"] == 216
    assert reader.bytes_read <= 3 * READ_BUFFER_BYTES < artifact.size / 2


def test_inspections_read_local_files_too(local_storage, inspected, api_client):
    body = inspected(onnx_model(), "m.onnx", format="onnx")
    assert detail(api_client, body)["inspection"]["status"] == "done"


# --- Lists, filters, compare, the backfill command -----------------------------------------------


def test_the_list_query_count_stays_pinned_with_inspections(api_client, inspected, django_assert_num_queries):
    inspected(onnx_model(), "m.onnx", version="1", format="onnx")
    for i in range(2, 6):
        inspected(geti_export(height=100 + i), "e.zip", version=str(i), registered_model=f"m{i}")
    inspected(b"not a model", "notes.txt", version="9")
    # the first page's rows, joined to version, model, creator and inspection (every row: no count)
    with django_assert_num_queries(1):
        results = api_client.get("/api/v1/artifacts/").json()["results"]
    assert sorted(r["inspection"]["status"] for r in results) == ["done"] * 5 + ["not_applicable"]


def test_artifacts_are_filtered_by_what_their_files_hold(api_client, upload, inspected):
    onnx = inspected(onnx_model(), "m.onnx", version="1", format="onnx")
    ir16 = inspected(geti_export(weights="f16", height=640, width=640), "e.zip", version="2", precision="FP16")
    ir8 = inspected(openvino_ir(weights="i8", fake_quantize=True)[0], "m.xml", version="3", precision="INT8")
    pending = upload(b"later", version="4").json()  # its commit never ran: no inspection yet

    def ids(query):
        response = api_client.get(f"/api/v1/artifacts/?{query}")
        assert response.status_code == 200, response.content
        return {r["id"] for r in response.json()["results"]}

    assert ids("inspection_status=pending") == {pending["id"]}
    assert ids("inspection_status=done") == {onnx["id"], ir16["id"], ir8["id"]}
    assert ids("inspected_format=openvino") == {ir16["id"], ir8["id"]}
    assert ids("opset=17") == {onnx["id"]}
    assert ids("ir_version=11") == {ir16["id"], ir8["id"]}
    assert ids("input_shape=640x640") == {ir16["id"]}
    assert ids("weight_precision=int8") == {ir8["id"]}
    assert ids("parameters_min=220") == {onnx["id"]}
    assert api_client.get("/api/v1/artifacts/?inspection_status=bogus").status_code == 400


def test_compare_shows_signature_differences(api_client, client, inspected):
    a = inspected(geti_export(height=224, width=224), "e.zip", version="1")
    b = inspected(geti_export(height=320, width=320), "e.zip", version="2")
    c = inspected(geti_export(height=224, width=224), "e.zip", version="2", target_device="GPU")

    body = api_client.get(f"/api/v1/compare/?artifacts={a['id']},{b['id']},{c['id']}").json()
    rows = {row["field"]: row for row in body["fields"]}
    assert rows["inputs"]["values"] == [
        "image: f32[?,3,224,224]",
        "image: f32[?,3,320,320]",
        "image: f32[?,3,224,224]",
    ]
    assert rows["inputs"]["differs"] and rows["outputs"]["differs"]
    assert not rows["weight_precision"]["differs"]

    versions = api_client.get(f"/api/v1/compare/?versions={a['version_id']},{b['version_id']}").json()
    [cpu] = [row for row in versions["variants"] if row["variant"] == "FP32/CPU/openvino"]
    assert cpu["signature_differs"] is True
    assert cpu["values"][1]["inputs"] == "image: f32[?,3,320,320]"

    page = client.get(f"/compare/?versions={a['version_id']},{b['version_id']}").content.decode()
    assert "<h2>Signatures</h2>" in page
    assert "image: f32[?,3,320,320] → scores: f32[?,8,318,318]" in page


def test_the_command_backfills_pending_then_failed_then_all(upload, capsys):
    first = upload(onnx_model(), name="m.onnx", version="1", format="onnx").json()
    broken = upload(onnx_model()[:-5], name="m.onnx", version="2", format="onnx").json()

    call_command("inspect_artifacts")
    assert ArtifactInspection.objects.get(pk=first["id"]).status == "done"
    assert ArtifactInspection.objects.get(pk=broken["id"]).status == "failed"
    assert "Inspected: 1 done, 1 failed." in capsys.readouterr().out

    call_command("inspect_artifacts", "--pending")
    assert "nothing to inspect" in capsys.readouterr().out
    call_command("inspect_artifacts", "--failed")
    assert "Inspected: 1 failed." in capsys.readouterr().out
    call_command("inspect_artifacts", "--all")
    assert "Inspected: 1 done, 1 failed." in capsys.readouterr().out


def test_the_worker_function_reinspects_in_place(artifact):
    first = inspect_artifact_by_id(artifact.pk)
    second = inspect_artifact_by_id(artifact.pk)
    assert ArtifactInspection.objects.count() == 1
    assert second.inspected_at >= first.inspected_at


def test_the_admin_shows_the_inspection_and_its_warnings(admin_client, inspected):
    body = inspected(geti_export(weights="f16"), "export.zip", precision="FP32")

    page = admin_client.get(f"/admin/models_app/artifact/{body['id']}/change/").content.decode()

    assert "done (openvino, weights FP16, 216 parameters)" in page
    assert "Declared precision FP32, but the weights are FP16." in page


def test_a_graph_with_countless_inputs_keeps_the_first_hundred_in_its_signature(upload):
    from onnx import TensorProto, helper

    names = [f"in{i}" for i in range(150)]
    graph = helper.make_graph(
        [helper.make_node("Sum", names, ["total"])],
        "many",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in names],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, [1])],
    )
    body = upload(helper.make_model(graph).SerializeToString(), name="many.onnx", format="onnx").json()

    inspection = inspect_artifact_by_id(body["id"])

    assert [t["name"] for t in inspection.signature["inputs"]] == names[:100]
    assert (inspection.details["input_count"], inspection.details["output_count"]) == (150, 1)


def test_direct_uploads_are_inspected_too(api_client, bucket, settings, django_capture_on_commit_callbacks):
    from .test_direct_uploads import put_parts, start

    settings.TASKS = IMMEDIATE
    content = onnx_model()
    session = start(api_client, content, filename="detector.onnx", precision="FP16", format="onnx").json()
    parts = put_parts(session, content)

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(f"/api/v1/uploads/{session['id']}/complete/", {"parts": parts}, format="json")

    assert response.status_code == 201, response.content
    inspection = detail(api_client, response.json())["inspection"]
    assert (inspection["status"], inspection["weight_precision"]) == ("done", "FP32")
    assert inspection["warnings"] == ["Declared precision FP16, but the weights are FP32."]
