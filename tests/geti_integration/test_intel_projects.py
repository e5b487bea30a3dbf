"""Intel Model Registry's Geti routes: /projects, /projects/{id}, /projects/{id}/geti-models/download."""

import pytest

from geti_integration.models import ImportJob
from models_app.models import Artifact
from tests import geti_fake as fx

pytestmark = pytest.mark.django_db

DOWNLOAD = f"/projects/{fx.WIDGETS}/geti-models/download"
NOTE = "Note: Only OpenVINO optimized active models are supported at this time.\n"


def fp16_and_int8():
    return {
        "models": [
            {"id": fx.WIDGETS_FP16, "group_id": fx.WIDGETS_GROUP},
            {"id": fx.WIDGETS_INT8, "group_id": fx.WIDGETS_GROUP},
        ]
    }


def test_projects_come_in_intel_s_shape_with_openvino_models_only(geti, anon_client):
    response = anon_client.get("/projects")

    assert response.status_code == 200
    projects = response.json()
    assert [p["name"] for p in projects] == ["Widgets", "Cells", "Scratches", "Parking"]
    widgets = projects[0]
    assert set(widgets) == {"id", "name", "creation_time", "model_groups"}
    group = widgets["model_groups"][0]
    assert set(group) == {"id", "name", "model_versions"}
    version = group["model_versions"][0]
    assert (version["id"], version["name"], version["version"]) == (fx.WIDGETS_MODEL, "YOLOX-TINY", 1)
    assert version["openvino_models"] == [
        {"id": fx.WIDGETS_FP16, "name": "YOLOX-TINY OpenVINO FP16"},
        {"id": fx.WIDGETS_INT8, "name": "YOLOX-TINY OpenVINO INT8"},
        {"id": fx.WIDGETS_FP32, "name": "YOLOX-TINY OpenVINO FP32"},
        {"id": fx.WIDGETS_FP32_XAI, "name": "YOLOX-TINY OpenVINO FP32 with XAI head"},
    ]


def test_one_project_in_intel_s_shape(geti, anon_client):
    response = anon_client.get(f"/projects/{fx.SCRATCHES}")

    assert response.status_code == 200
    assert response.json()["model_groups"][0]["model_versions"][0]["openvino_models"][0]["id"] == fx.SCRATCHES_FP32


def intel_error(response):
    """Intel's message, which we send in our JSON error shape."""
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]["message"]


def test_an_unknown_project_is_intel_s_404(geti, anon_client):
    response = anon_client.get(f"/projects/{fx.oid(0xDEAD)}")

    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Project not found."}}


def test_a_malformed_project_id_is_intel_s_400(geti, anon_client):
    response = anon_client.get("/projects/short")

    assert response.status_code == 400
    assert intel_error(response).startswith("Invalid format for project ID.")


def test_an_unknown_path_under_projects_is_a_json_404(geti, anon_client):
    response = anon_client.get(f"/projects/{fx.WIDGETS}/elsewhere")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_refused_token_is_an_error_where_intel_answered_an_empty_list(geti, anon_client, monkeypatch):
    monkeypatch.setenv("GETI_TOKEN", "geti_pat_wrong")

    response = anon_client.get("/projects")

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "geti_token_refused"


@pytest.mark.parametrize("path", ["/projects", f"/projects/{fx.WIDGETS}"])
def test_with_the_integration_off_projects_are_not_found_and_say_so(geti_off, anon_client, path):
    response = anon_client.get(path)

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "geti_disabled", "message": "The Geti integration is off: set GETI_HOST and GETI_TOKEN."}
    }


def test_with_the_integration_off_a_download_is_refused_as_not_found(geti_off, api_client):
    response = api_client.post(DOWNLOAD, fp16_and_int8(), format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "geti_disabled"
    assert (ImportJob.objects.count(), Artifact.objects.count()) == (0, 0)


def test_download_registers_the_models_and_answers_intel_s_201(geti, api_client, bucket, immediate_tasks):
    response = api_client.post(DOWNLOAD, fp16_and_int8(), format="json")

    assert response.status_code == 201
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content.decode() == f"Model(s): {fx.WIDGETS_FP16}, {fx.WIDGETS_INT8} registered.\n{NOTE}"
    artifacts = Artifact.objects.order_by("precision")
    assert [(a.external_id, a.precision) for a in artifacts] == [(fx.WIDGETS_FP16, "FP16"), (fx.WIDGETS_INT8, "INT8")]
    assert artifacts[0].sha256 == geti.export_digest(fx.WIDGETS_FP16).sha256


def test_download_of_a_registered_model_is_intel_s_409(geti, api_client, bucket, immediate_tasks):
    api_client.post(DOWNLOAD, {"models": [{"id": fx.WIDGETS_FP16, "group_id": fx.WIDGETS_GROUP}]}, format="json")

    response = api_client.post(DOWNLOAD, fp16_and_int8(), format="json")

    assert response.status_code == 409
    assert intel_error(response) == (
        f"Model(s): {fx.WIDGETS_FP16} is already registered. No model(s) registered.\n"
        "Tip: Delete the previously mentioned model(s) or remove the id(s) from the request body then try again."
    )
    assert Artifact.objects.count() == 1


@pytest.mark.parametrize(
    "entry",
    [
        {"id": fx.oid(0xBAD), "group_id": fx.WIDGETS_GROUP},
        {"id": fx.WIDGETS_ONNX, "group_id": fx.WIDGETS_GROUP},  # not an OpenVINO model
        {"id": fx.WIDGETS_FP16, "group_id": fx.PURGED_GROUP},  # not in that group
    ],
)
def test_download_of_an_unknown_model_is_intel_s_404(geti, api_client, entry):
    response = api_client.post(DOWNLOAD, {"models": [entry]}, format="json")

    assert response.status_code == 404
    assert intel_error(response) == "Project or model id not found. No model(s) registered."
    assert ImportJob.objects.count() == 0


def test_download_from_an_unknown_project_is_intel_s_404(geti, api_client):
    response = api_client.post(f"/projects/{fx.oid(0xDEAD)}/geti-models/download", fp16_and_int8(), format="json")

    assert response.status_code == 404
    assert intel_error(response) == "Project or model id not found. No model(s) registered."


def test_download_without_models_is_a_422_like_intel_s(geti, api_client):
    response = api_client.post(DOWNLOAD, {"models": [{"id": fx.WIDGETS_FP16}]}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"models.0.group_id": ["This field is required."]}


def test_download_of_an_empty_list_is_intel_s_403(geti, api_client):
    response = api_client.post(DOWNLOAD, {"models": []}, format="json")

    assert response.status_code == 403
    assert intel_error(response) == f"Model(s):  can not be registered.\n{NOTE}"


def test_a_model_that_cannot_be_imported_is_intel_s_403_with_the_reason(geti, api_client, bucket, immediate_tasks):
    response = api_client.post(
        f"/projects/{fx.WIDGETS}/geti-models/download",
        {"models": [{"id": fx.PURGED_FP16, "group_id": fx.PURGED_GROUP}]},
        format="json",
    )

    assert response.status_code == 403
    message = intel_error(response)
    assert message.startswith(f"Model(s): {fx.PURGED_FP16} can not be registered.\n{NOTE}")
    assert "purged" in message
    assert Artifact.objects.count() == 0


def test_a_download_answers_202_at_once_with_where_to_follow_the_jobs(geti, api_client):
    # No worker runs here: the jobs stay queued, and the request does not wait for them.
    response = api_client.post(DOWNLOAD, fp16_and_int8(), format="json")

    assert response.status_code == 202
    jobs = ImportJob.objects.order_by("created_at")
    assert [job.state for job in jobs] == ["queued", "queued"]
    follow = f"/api/v1/geti/imports/?id={','.join(str(job.pk) for job in jobs)}"
    assert response["Location"] == follow
    assert response["Retry-After"] == "10"
    assert response.content.decode() == (
        f"Model(s): {fx.WIDGETS_FP16}, {fx.WIDGETS_INT8} are being imported.\nFollow them at {follow}\n"
    )
    followed = api_client.get(follow).json()
    assert sorted(job["optimized_model_id"] for job in followed["results"]) == sorted(
        [fx.WIDGETS_FP16, fx.WIDGETS_INT8]
    )


def test_repeating_a_download_that_is_still_running_joins_its_jobs(geti, api_client):
    first = api_client.post(DOWNLOAD, fp16_and_int8(), format="json")

    again = api_client.post(DOWNLOAD, fp16_and_int8(), format="json")

    assert (first.status_code, again.status_code) == (202, 202)
    assert again["Location"] == first["Location"]
    assert ImportJob.objects.count() == 2


def test_download_needs_a_user_allowed_to_add_artifacts(geti, anon_client):
    response = anon_client.post(DOWNLOAD, fp16_and_int8(), format="json")

    assert response.status_code == 401
    assert ImportJob.objects.count() == 0


def test_a_trusted_deployment_may_accept_anonymous_downloads_like_intel(
    geti, anon_client, bucket, settings, immediate_tasks
):
    settings.REGISTRY_INTEL_COMPAT_ANONYMOUS_WRITES = True

    response = anon_client.post(DOWNLOAD, fp16_and_int8(), format="json")

    assert response.status_code == 201
    assert ImportJob.objects.filter(created_by=None, state="done").count() == 2
