"""The /geti/ page and the admin's import jobs."""

import re

import pytest

from geti_integration.models import ImportJob
from tests import geti_fake as fx
from tests.conftest import grant

from .conftest import run_queued

pytestmark = pytest.mark.django_db


def test_with_the_integration_off_the_page_says_how_to_switch_it_on(geti_off, client):
    response = client.get("/geti/")

    assert response.status_code == 200
    page = response.content.decode()
    assert "The Geti integration is off." in page
    assert "GETI_HOST=" in page and "GETI_TOKEN=" in page


def test_the_page_lists_the_projects(geti, client):
    response = client.get("/geti/")

    assert response.status_code == 200
    page = response.content.decode()
    for name in ("Widgets", "Cells", "Scratches", "Parking"):
        assert f">{name}</a>" in page
    assert "instance_segmentation" in page
    assert 'name="models"' not in page  # no project picked yet


def test_picking_a_project_shows_its_optimized_models_with_checkboxes(geti, user_client):
    response = user_client.get(f"/geti/?project={fx.WIDGETS}")

    page = response.content.decode()
    assert "YOLOX-TINY OpenVINO INT8" in page
    assert f'value="{fx.WIDGETS_GROUP}:{fx.WIDGETS_MODEL}:{fx.WIDGETS_INT8}"' in page
    assert "csrfmiddlewaretoken" in page
    assert "Import selected models" in page
    # The purged model's variant cannot be ticked.
    assert re.search(rf'value="{fx.PURGED_GROUP}:{fx.PURGED_MODEL}:{fx.PURGED_FP16}"[^>]*disabled', page)


def test_anonymous_visitors_see_models_but_are_asked_to_log_in_to_import(geti, client):
    page = client.get(f"/geti/?project={fx.WIDGETS}").content.decode()

    assert "Log in</a> to import models" in page
    assert "Import selected models" not in page


def test_importing_from_the_page_queues_jobs_and_shows_them_with_progress(geti, user_client, bucket):
    response = user_client.post(
        "/geti/import/",
        {
            "project_id": fx.WIDGETS,
            "models": [
                f"{fx.WIDGETS_GROUP}:{fx.WIDGETS_MODEL}:{fx.WIDGETS_FP16}",
                f"{fx.WIDGETS_GROUP}:{fx.WIDGETS_MODEL}:{fx.WIDGETS_INT8}",
            ],
        },
    )

    assert response.status_code == 302
    assert response["Location"] == f"/geti/?project={fx.WIDGETS}"
    assert ImportJob.objects.filter(state="queued").count() == 2
    page = user_client.get(response["Location"]).content.decode()
    assert "Queued 2 import(s)" in page
    assert page.count('data-state="queued"') == 2
    assert "js/geti.js" in page

    run_queued()
    page = user_client.get(response["Location"]).content.decode()
    assert page.count('data-state="done"') == 2
    assert 'value="100.0"' in page
    assert "in registry</a>" in page  # imported variants are no longer offered


def test_the_page_asks_for_a_tick_before_importing(geti, user_client):
    response = user_client.post("/geti/import/", {"project_id": fx.WIDGETS}, follow=True)

    assert "Tick at least one optimized model to import." in response.content.decode()
    assert ImportJob.objects.count() == 0


def test_importing_from_the_page_needs_a_login(geti, client):
    response = client.post(
        "/geti/import/",
        {"project_id": fx.WIDGETS, "models": [f"{fx.WIDGETS_GROUP}:{fx.WIDGETS_MODEL}:{fx.WIDGETS_FP16}"]},
    )

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert ImportJob.objects.count() == 0


def test_importing_from_the_page_needs_the_add_artifact_permission(geti, client, django_user_model):
    client.force_login(django_user_model.objects.create_user("bob", password="pw-bob"))

    response = client.post(
        "/geti/import/",
        {"project_id": fx.WIDGETS, "models": [f"{fx.WIDGETS_GROUP}:{fx.WIDGETS_MODEL}:{fx.WIDGETS_FP16}"]},
    )

    assert response.status_code == 403
    assert ImportJob.objects.count() == 0


def test_a_refused_token_is_shown_on_the_page(geti, client, monkeypatch):
    monkeypatch.setenv("GETI_TOKEN", "geti_pat_wrong")

    response = client.get("/geti/")

    assert response.status_code == 502
    assert "Geti refused the token" in response.content.decode()


def test_the_job_list_costs_the_same_queries_for_one_or_many_jobs(geti_off, client, django_assert_num_queries):
    fields = {
        "project_id": fx.WIDGETS,
        "group_id": fx.WIDGETS_GROUP,
        "model_id": fx.WIDGETS_MODEL,
        "state": ImportJob.State.FAILED,
    }
    ImportJob.objects.create(**fields, optimized_model_id=fx.WIDGETS_FP16)
    # 1 query: the recent jobs joined to their user, artifact, version and registered model.
    with django_assert_num_queries(1):
        client.get("/geti/")
    for optimized_id in (fx.WIDGETS_INT8, fx.WIDGETS_FP32, fx.WIDGETS_ONNX):
        ImportJob.objects.create(**fields, optimized_model_id=optimized_id)
    with django_assert_num_queries(1):
        assert client.get("/geti/").content.decode().count('data-state="failed"') == 4


def test_the_admin_lists_import_jobs_and_links_to_the_geti_page(geti_off, admin_client):
    ImportJob.objects.create(
        project_id=fx.WIDGETS,
        project_name="Widgets",
        group_id=fx.WIDGETS_GROUP,
        model_id=fx.WIDGETS_MODEL,
        optimized_model_id=fx.WIDGETS_FP16,
        name="YOLOX-TINY OpenVINO FP16",
        bytes_done=50,
        bytes_total=200,
    )

    response = admin_client.get("/admin/geti_integration/importjob/")

    page = response.content.decode()
    assert response.status_code == 200
    assert 'href="/geti/"' in page
    assert "YOLOX-TINY OpenVINO FP16" in page
    assert "25%" in page


def test_staff_can_read_a_job_in_the_admin_but_not_change_it(geti_off, client, django_user_model):
    job = ImportJob.objects.create(
        project_id=fx.WIDGETS, group_id=fx.WIDGETS_GROUP, model_id=fx.WIDGETS_MODEL, optimized_model_id=fx.WIDGETS_FP16
    )
    staff = grant(django_user_model.objects.create_user("carol", password="pw", is_staff=True), "view_importjob")
    client.force_login(staff)

    assert client.get(f"/admin/geti_integration/importjob/{job.pk}/change/").status_code == 200
    assert client.post(f"/admin/geti_integration/importjob/{job.pk}/change/", {"state": "done"}).status_code == 403
    assert ImportJob.objects.get(pk=job.pk).state == "queued"
