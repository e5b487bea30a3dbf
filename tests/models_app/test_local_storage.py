"""The zero-set-up default: artifacts as local files."""

import pytest

from models_app.models import Artifact

pytestmark = pytest.mark.django_db


def test_upload_download_and_delete_work_on_local_files(
    api_client, upload, local_storage, django_capture_on_commit_callbacks
):
    body = upload(b"local-bytes" * 1000, name="model.xml").json()
    path = local_storage / Artifact.objects.get().file.name
    assert path.read_bytes() == b"local-bytes" * 1000
    response = api_client.get(f"/api/v1/artifacts/{body['id']}/download/", HTTP_RANGE="bytes=0-4")
    assert response.status_code == 206 and b"".join(response.streaming_content) == b"local"
    with django_capture_on_commit_callbacks(execute=True):
        assert api_client.delete(f"/api/v1/artifacts/{body['id']}/").status_code == 204
    assert not path.exists()


def test_readyz_is_ok_on_an_empty_local_store(client, local_storage):
    assert client.get("/readyz").status_code == 200
