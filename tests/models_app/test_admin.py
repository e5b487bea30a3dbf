"""The admin for curators: pages that render, useful lists at fixed query counts, and deletes
that remove files and say beforehand how many and how large."""

import pytest

from models_app.models import Artifact, ModelVersion, RegisteredModel
from tests.conftest import bucket_keys, count_queries, free_port, s3_storages

pytestmark = pytest.mark.django_db


def test_every_admin_list_and_change_page_renders(admin_client, artifact):
    for url in [
        "/admin/models_app/registeredmodel/",
        "/admin/models_app/modelversion/",
        "/admin/models_app/artifact/",
        f"/admin/models_app/registeredmodel/{artifact.version.registered_model.pk}/change/",
        f"/admin/models_app/modelversion/{artifact.version.pk}/change/",
        f"/admin/models_app/artifact/{artifact.pk}/change/",
    ]:
        response = admin_client.get(url)
        assert response.status_code == 200, url
    page = admin_client.get(f"/admin/models_app/artifact/{artifact.pk}/change/").content.decode()
    assert artifact.sha256 in page and artifact.get_download_url() in page


@pytest.mark.parametrize(
    "url", ["/admin/models_app/artifact/", "/admin/models_app/modelversion/", "/admin/models_app/registeredmodel/"]
)
def test_admin_list_query_counts_do_not_grow(admin_client, upload, url):
    for i in range(3):
        upload(str(i).encode(), version=str(i), registered_model=f"m{i}")
    few = count_queries(admin_client, url)
    for i in range(3, 20):
        upload(str(i).encode(), version=str(i), registered_model=f"m{i}")
    assert count_queries(admin_client, url) == few


def test_deleting_in_the_admin_removes_the_file(admin_client, artifact, bucket, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            f"/admin/models_app/registeredmodel/{artifact.version.registered_model.pk}/delete/", {"post": "yes"}
        )
    assert response.status_code == 302
    assert not RegisteredModel.objects.exists() and not Artifact.objects.exists()
    assert bucket_keys(bucket) == []


@pytest.fixture
def two_versions(upload, bucket):
    """Two versions of one model with three stored files of 1000, 2000 and 3000 bytes."""
    for version, precision, size in (("1", "FP32", 1000), ("1", "INT8", 2000), ("2", "FP16", 3000)):
        response = upload(b"x" * size, version=version, precision=precision, score="0.5")
        assert response.status_code == 201, response.content
    return ModelVersion.objects.order_by("version")


def test_the_artifact_list_shows_the_columns_curators_need(admin_client, two_versions):
    response = admin_client.get("/admin/models_app/artifact/")
    assert response.status_code == 200
    html = response.content.decode()
    for header in ("Model", "Version", "Precision", "Target device", "Score", "Size", "Created", "File"):
        assert f">{header}<" in html or f">{header}</a>" in html
    assert "2.9\xa0KB" in html and "Download</a>" in html


@pytest.mark.parametrize("count", [3, 30])
def test_the_admin_lists_take_a_fixed_number_of_queries(admin_client, django_assert_max_num_queries, count):
    registered = RegisteredModel.objects.create(name="many")
    for i in range(count):
        version = registered.versions.create(version=str(i))
        Artifact.objects.create(version=version, size=10, sha256="0" * 64, file=f"artifacts/{i}/m.bin")
    for path in (
        "/admin/models_app/artifact/",
        "/admin/models_app/modelversion/",
        "/admin/models_app/registeredmodel/",
    ):
        # session, user, count(s), the page of rows with its joins, date hierarchy, filters
        with django_assert_max_num_queries(12):
            assert admin_client.get(path).status_code == 200


def test_the_bulk_delete_confirmation_says_how_many_files_and_bytes_go(admin_client, two_versions):
    response = admin_client.post(
        "/admin/models_app/modelversion/",
        {"action": "delete_selected", "_selected_action": [str(v.pk) for v in two_versions]},
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "3 stored files</strong> (5.9\xa0KB, 6000 bytes)" in html
    assert ModelVersion.objects.count() == 2  # nothing deleted before confirming


def test_confirming_the_bulk_delete_removes_rows_and_files(
    admin_client, two_versions, bucket, django_capture_on_commit_callbacks
):
    first = two_versions.first()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            "/admin/models_app/modelversion/",
            {"action": "delete_selected", "_selected_action": [str(first.pk)], "post": "yes"},
        )
    assert response.status_code == 302
    assert list(ModelVersion.objects.values_list("version", flat=True)) == ["2"]
    assert bucket_keys(bucket) == [Artifact.objects.get().file.name]


def test_the_single_delete_page_of_a_model_counts_all_its_files(
    admin_client, two_versions, bucket, django_capture_on_commit_callbacks
):
    registered = RegisteredModel.objects.get()
    html = admin_client.get(f"/admin/models_app/registeredmodel/{registered.pk}/delete/").content.decode()
    assert "3 stored files</strong>" in html and "6000 bytes" in html
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/models_app/registeredmodel/{registered.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not RegisteredModel.objects.exists() and bucket_keys(bucket) == []


def test_a_bulk_delete_deletes_nothing_when_the_storage_is_down(admin_client, two_versions, settings):
    settings.STORAGES = s3_storages(f"http://127.0.0.1:{free_port()}", "gone")
    response = admin_client.post(
        "/admin/models_app/artifact/",
        {"action": "delete_selected", "_selected_action": [str(a.pk) for a in Artifact.objects.all()], "post": "yes"},
        follow=True,
    )
    assert "Nothing was deleted" in response.content.decode()
    assert Artifact.objects.count() == 3


def test_versions_can_be_deprecated_in_bulk(admin_client, two_versions):
    response = admin_client.post(
        "/admin/models_app/modelversion/",
        {"action": "mark_deprecated", "_selected_action": [str(v.pk) for v in two_versions]},
    )
    assert response.status_code == 302
    assert set(ModelVersion.objects.values_list("status", flat=True)) == {"deprecated"}


def test_checksums_are_read_only_on_the_artifact_page(admin_client, two_versions):
    artifact = Artifact.objects.first()
    html = admin_client.get(f"/admin/models_app/artifact/{artifact.pk}/change/").content.decode()
    assert artifact.sha256 in html
    assert 'name="sha256"' not in html and 'name="size"' not in html


def test_the_admin_shows_precisions_as_written_and_json_indented(admin_client, artifact):
    listing = admin_client.get("/admin/models_app/artifact/").content.decode()
    assert "Fp32" not in listing and ">FP32<" in listing
    page = admin_client.get(f"/admin/models_app/modelversion/{artifact.version_id}/change/").content.decode()
    # the variants inline is read-only (files change on their own page, through the services)
    assert "Fp32" not in page and ">FP32<" in page
    assert 'class="vLargeTextField json-field"' in page


def test_the_models_list_names_the_latest_version(admin_client, artifact):
    listing = admin_client.get("/admin/models_app/registeredmodel/").content.decode()
    assert f'<td class="field-latest_version">{artifact.version.version}</td>' in listing
