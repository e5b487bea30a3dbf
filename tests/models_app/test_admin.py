import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from models_app.models import Artifact, RegisteredModel
from tests.conftest import bucket_keys

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_every_admin_list_and_change_page_renders(staff_client, artifact):
    for url in ["/admin/models_app/registeredmodel/", "/admin/models_app/modelversion/",
                "/admin/models_app/artifact/",
                f"/admin/models_app/registeredmodel/{artifact.version.registered_model.pk}/change/",
                f"/admin/models_app/modelversion/{artifact.version.pk}/change/",
                f"/admin/models_app/artifact/{artifact.pk}/change/"]:
        response = staff_client.get(url)
        assert response.status_code == 200, url
    page = staff_client.get(f"/admin/models_app/artifact/{artifact.pk}/change/").content.decode()
    assert artifact.sha256 in page and artifact.get_download_url() in page


def admin_list_queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("url", ["/admin/models_app/artifact/", "/admin/models_app/modelversion/",
                                 "/admin/models_app/registeredmodel/"])
def test_admin_list_query_counts_do_not_grow(staff_client, upload, url):
    for i in range(3):
        upload(str(i).encode(), version=str(i), registered_model=f"m{i}")
    few = admin_list_queries(staff_client, url)
    for i in range(3, 20):
        upload(str(i).encode(), version=str(i), registered_model=f"m{i}")
    assert admin_list_queries(staff_client, url) == few


def test_deleting_in_the_admin_removes_the_file(staff_client, artifact, bucket, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/admin/models_app/registeredmodel/{artifact.version.registered_model.pk}/delete/",
                                     {"post": "yes"})
    assert response.status_code == 302
    assert not RegisteredModel.objects.exists() and not Artifact.objects.exists()
    assert bucket_keys(bucket) == []
