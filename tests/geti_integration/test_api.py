"""REST API under /api/v1/geti/ against the fake Geti server."""

import socket

import pytest
import yaml

from geti_integration.models import ImportJob
from models_app.models import Artifact
from tests import geti_fake as fx
from tests.conftest import grant
from tests.geti_fake import FakeGeti

from .conftest import run_queued

pytestmark = pytest.mark.django_db

IMPORT = {
    "project_id": fx.WIDGETS,
    "models": [
        {"group_id": fx.WIDGETS_GROUP, "model_id": fx.WIDGETS_MODEL, "optimized_model_id": fx.WIDGETS_FP16},
        {"group_id": fx.WIDGETS_GROUP, "optimized_model_id": fx.WIDGETS_INT8},
    ],
}


def widgets(body):
    return next(p for p in body["results"] if p["id"] == fx.WIDGETS)


# --- projects -----------------------------------------------------------------------------------


def test_it_lists_projects_with_groups_models_and_optimized_models(geti, api_client):
    response = api_client.get("/api/v1/geti/projects/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert [p["name"] for p in body["results"]] == ["Widgets", "Cells", "Scratches", "Parking"]
    project = widgets(body)
    assert project["task_types"] == ["detection"]
    group = project["model_groups"][0]
    assert (group["id"], group["name"]) == (fx.WIDGETS_GROUP, "YOLOX-TINY")
    model = group["models"][0]
    assert (model["id"], model["version"], model["active_model"], model["is_purged"]) == (
        fx.WIDGETS_MODEL,
        1,
        True,
        False,
    )
    assert model["labels"] == ["widget", "No object"]
    optimized = {o["id"]: o for o in model["optimized_models"]}
    assert set(optimized) == {fx.WIDGETS_FP16, fx.WIDGETS_INT8, fx.WIDGETS_FP32, fx.WIDGETS_FP32_XAI, fx.WIDGETS_ONNX}
    assert optimized[fx.WIDGETS_INT8]["precision"] == ["INT8"]
    assert optimized[fx.WIDGETS_INT8]["optimization_type"] == "POT"
    assert optimized[fx.WIDGETS_ONNX]["model_format"] == "ONNX"
    assert optimized[fx.WIDGETS_FP16]["imported_artifact"] is None
    purged = project["model_groups"][1]["models"][0]
    assert purged["is_purged"] is True


def test_the_project_list_pages_past_geti_s_limit_of_100(api_client, geti_off, monkeypatch, settings):
    with FakeGeti(project_count=130) as fake:
        monkeypatch.setenv("GETI_HOST", fake.url)
        monkeypatch.setenv("GETI_TOKEN", fake.token)

        first = api_client.get("/api/v1/geti/projects/?page_size=100").json()
        last = api_client.get("/api/v1/geti/projects/?page_size=100&page=2").json()

    assert first["count"] == 130
    assert len(first["results"]) == 100
    assert len(last["results"]) == 30
    assert last["results"][-1]["name"] == "Filler 0130"


def test_the_project_list_costs_one_query_however_many_models(geti, api_client, django_assert_num_queries):
    # 1 query: the artifacts already imported for the optimized models on the page.
    with django_assert_num_queries(1):
        response = api_client.get("/api/v1/geti/projects/?page_size=100")

    assert response.status_code == 200


def test_only_the_projects_on_the_page_cost_model_calls(geti, api_client):
    api_client.get("/api/v1/geti/projects/?page_size=1")

    # The first project only (Widgets): its groups once, each of its two models once.
    assert len(geti.requests_to("/model_groups")) == 1
    assert len([r for r in geti.requests if "/models/" in r.path]) == 2


def test_it_shows_one_project(geti, api_client):
    response = api_client.get(f"/api/v1/geti/projects/{fx.CELLS}/")

    assert response.status_code == 200
    body = response.json()
    assert body["task_types"] == ["instance_segmentation"]
    assert len(body["model_groups"][0]["models"][0]["optimized_models"]) == 4


def test_an_unknown_project_is_a_404_with_geti_s_message(geti, api_client):
    response = api_client.get(f"/api/v1/geti/projects/{fx.oid(0xDEAD)}/")

    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "project_not_found"
    assert "The requested project could not be found" in error["message"]


def test_a_refused_token_is_an_error_not_an_empty_list(geti, api_client, monkeypatch):
    monkeypatch.setenv("GETI_TOKEN", "geti_pat_wrong")

    response = api_client.get("/api/v1/geti/projects/")

    assert response.status_code == 502
    assert response.json() == {
        "error": {
            "code": "geti_token_refused",
            "message": "Geti refused the token (HTTP 401: Invalid authorization token); check GETI_TOKEN.",
        }
    }


def test_an_unreachable_geti_is_a_503(geti_off, api_client, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("GETI_HOST", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("GETI_TOKEN", "geti_pat_x")

    response = api_client.get("/api/v1/geti/projects/")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "geti_unavailable"
    assert "Cannot reach Geti" in response.json()["error"]["message"]
    assert response["Retry-After"] == "30"


@pytest.mark.parametrize("path", ["/api/v1/geti/projects/", f"/api/v1/geti/projects/{fx.WIDGETS}/"])
def test_with_the_integration_off_the_endpoints_are_not_found_and_say_how_to_switch_it_on(geti_off, api_client, path):
    response = api_client.get(path)

    assert response.status_code == 404
    assert "Retry-After" not in response
    assert response.json() == {
        "error": {"code": "geti_disabled", "message": "The Geti integration is off: set GETI_HOST and GETI_TOKEN."}
    }


def test_with_the_integration_off_imports_are_refused_as_not_found(geti_off, api_client):
    response = api_client.post("/api/v1/geti/imports/", IMPORT, format="json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "geti_disabled"
    assert ImportJob.objects.count() == 0


def test_with_the_integration_off_past_import_jobs_stay_readable(geti_off, api_client):
    response = api_client.get("/api/v1/geti/imports/")

    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_a_token_without_its_host_is_reported_as_misconfigured(geti_off, api_client, monkeypatch):
    monkeypatch.setenv("GETI_HOST", "https://geti.example.com")

    response = api_client.get("/api/v1/geti/projects/")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "geti_misconfigured"
    assert "GETI_TOKEN is empty" in response.json()["error"]["message"]


# --- imports ------------------------------------------------------------------------------------


def test_it_starts_imports_and_answers_202_with_queued_jobs(geti, api_client, user):
    response = api_client.post("/api/v1/geti/imports/", IMPORT, format="json")

    assert response.status_code == 202
    jobs = response.json()["jobs"]
    assert [(j["optimized_model_id"], j["state"]) for j in jobs] == [
        (fx.WIDGETS_FP16, "queued"),
        (fx.WIDGETS_INT8, "queued"),
    ]
    assert jobs[1]["model_id"] == fx.WIDGETS_MODEL
    assert jobs[0]["project_name"] == "Widgets"
    assert jobs[0]["name"] == "YOLOX-TINY OpenVINO FP16"
    assert jobs[0]["created_by"] == "alice"
    assert ImportJob.objects.count() == 2
    assert Artifact.objects.count() == 0


def test_a_job_reads_back_done_with_its_artifact_after_the_worker_ran(geti, api_client, bucket):
    job_id = api_client.post("/api/v1/geti/imports/", IMPORT, format="json").json()["jobs"][0]["id"]
    run_queued()

    response = api_client.get(f"/api/v1/geti/imports/{job_id}/")

    assert response.status_code == 200
    body = response.json()
    digest = geti.export_digest(fx.WIDGETS_FP16)
    assert body["state"] == "done"
    assert body["progress"] == 100.0
    assert body["bytes_done"] == body["bytes_total"] == digest.size
    assert body["error"] == ""
    assert body["artifact"]["sha256"] == digest.sha256
    assert body["artifact"]["registered_model"] == "Widgets-YOLOX-TINY"
    assert body["artifact"]["precision"] == "FP16"
    assert body["finished_at"] is not None
    listing = api_client.get(f"/api/v1/geti/projects/{fx.WIDGETS}/").json()
    optimized = {o["id"]: o for o in listing["model_groups"][0]["models"][0]["optimized_models"]}
    assert optimized[fx.WIDGETS_FP16]["imported_artifact"] == body["artifact"]["id"]


def test_with_the_immediate_backend_jobs_are_done_when_the_answer_comes(geti, api_client, bucket, immediate_tasks):
    response = api_client.post("/api/v1/geti/imports/", IMPORT, format="json")

    assert response.status_code == 202
    assert [j["state"] for j in response.json()["jobs"]] == ["done", "done"]
    assert Artifact.objects.count() == 2


def test_posting_the_same_models_again_returns_the_active_jobs(geti, api_client):
    first = api_client.post("/api/v1/geti/imports/", IMPORT, format="json").json()["jobs"]
    second = api_client.post("/api/v1/geti/imports/", IMPORT, format="json").json()["jobs"]

    assert [j["id"] for j in second] == [j["id"] for j in first]
    assert ImportJob.objects.count() == 2


def test_jobs_are_listed_newest_first_and_filtered_by_state(geti, api_client, bucket, django_assert_num_queries):
    api_client.post("/api/v1/geti/imports/", IMPORT, format="json")
    run_queued()
    api_client.post(
        "/api/v1/geti/imports/",
        {
            "project_id": fx.WIDGETS,
            "models": [
                {"group_id": fx.PURGED_GROUP, "model_id": fx.PURGED_MODEL, "optimized_model_id": fx.PURGED_FP16}
            ],
        },
        format="json",
    )
    run_queued()

    # 1 page of jobs joined to their user, artifact, version and registered model (it holds every
    # job, so it is the count).
    with django_assert_num_queries(1):
        response = api_client.get("/api/v1/geti/imports/")
    with django_assert_num_queries(1):
        failed = api_client.get("/api/v1/geti/imports/?state=failed")

    assert response.status_code == 200
    assert response.json()["count"] == 3
    assert [j["optimized_model_id"] for j in response.json()["results"]][0] == fx.PURGED_FP16
    assert [j["optimized_model_id"] for j in failed.json()["results"]] == [fx.PURGED_FP16]
    assert "purged" in failed.json()["results"][0]["error"]


def test_jobs_can_be_fetched_by_id_list(geti, api_client):
    jobs = api_client.post("/api/v1/geti/imports/", IMPORT, format="json").json()["jobs"]

    response = api_client.get(f"/api/v1/geti/imports/?id={jobs[1]['id']}")

    assert [j["id"] for j in response.json()["results"]] == [jobs[1]["id"]]


def test_an_unknown_job_is_a_404(db, api_client):
    response = api_client.get("/api/v1/geti/imports/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"models": IMPORT["models"]}, "project_id"),
        ({"project_id": fx.WIDGETS, "models": []}, "models"),
        ({"project_id": fx.WIDGETS, "models": [{"group_id": fx.WIDGETS_GROUP}]}, "models"),
        ({"project_id": "../../etc", "models": IMPORT["models"]}, "project_id"),
    ],
)
def test_an_invalid_import_request_is_a_400(geti, api_client, body, field):
    response = api_client.post("/api/v1/geti/imports/", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"
    assert field in response.json()["error"]["fields"]
    assert ImportJob.objects.count() == 0


def test_importing_an_unknown_model_is_a_404_and_queues_nothing(geti, api_client):
    response = api_client.post(
        "/api/v1/geti/imports/",
        {
            "project_id": fx.WIDGETS,
            "models": [
                {"group_id": fx.WIDGETS_GROUP, "model_id": fx.WIDGETS_MODEL, "optimized_model_id": fx.oid(0xBAD)}
            ],
        },
        format="json",
    )

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert ImportJob.objects.count() == 0


def test_anonymous_users_cannot_start_imports(geti, anon_client):
    response = anon_client.post("/api/v1/geti/imports/", IMPORT, format="json")

    assert response.status_code == 401
    assert ImportJob.objects.count() == 0


def test_starting_imports_needs_the_add_artifact_permission(geti, django_user_model):
    from rest_framework.test import APIClient

    bob = django_user_model.objects.create_user("bob", password="pw-bob")
    client = APIClient()
    client.force_authenticate(bob)

    assert client.post("/api/v1/geti/imports/", IMPORT, format="json").status_code == 403
    assert client.get("/api/v1/geti/imports/").status_code == 200
    grant(bob, "add_artifact")
    bob = django_user_model.objects.get(pk=bob.pk)  # permissions are cached per instance
    client.force_authenticate(bob)
    assert client.post("/api/v1/geti/imports/", IMPORT, format="json").status_code == 202


def test_reads_need_a_login_when_the_registry_requires_one(geti, anon_client, settings):
    settings.REGISTRY_REQUIRE_LOGIN = True

    assert anon_client.get("/api/v1/geti/projects/").status_code == 401
    assert anon_client.get("/api/v1/geti/imports/").status_code == 401


def test_the_schema_documents_the_integration_s_failures(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, method in [
        ("/api/v1/geti/projects/", "get"),
        ("/api/v1/geti/projects/{id}/", "get"),
        ("/api/v1/geti/imports/", "post"),
    ]:
        responses = schema["paths"][path][method]["responses"]
        assert "geti_disabled" in responses["404"]["description"], path
        assert "geti_token_refused" in responses["502"]["description"], path
        assert "geti_unavailable" in responses["503"]["description"], path
        assert all(responses[code]["content"] == error for code in ("404", "502", "503")), path
