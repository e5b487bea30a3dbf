"""docs/permissions.md, row by row: without the permission a write is a 403, with only it the
write succeeds."""

import pytest
from rest_framework.test import APIClient

from models_app.models import ModelVersion, RegisteredModel
from tests.conftest import grant

pytestmark = pytest.mark.django_db
RAW = "/api/v1/artifacts/upload/m.bin?registered_model=m&version=1&precision=int8"
ROWS = [
    ("post", "/api/v1/registered-models/", {"name": "new"}, "add_registeredmodel", 201),
    ("patch", "/api/v1/registered-models/m/", {"description": "d"}, "change_registeredmodel", 200),
    ("delete", "/api/v1/registered-models/m/?force=true", None, "delete_registeredmodel", 204),
    ("post", "/api/v1/versions/", {"registered_model": "m", "version": "2"}, "add_modelversion", 201),
    ("patch", "/api/v1/versions/{version}/", {"category": "Detection"}, "change_modelversion", 200),
    ("post", "/api/v1/versions/{version}/archive/", None, "change_modelversion", 200),
    ("delete", "/api/v1/versions/{version}/", None, "delete_modelversion", 204),
    ("put", RAW, b"bytes", "add_artifact", 201),
    ("post", RAW, b"bytes", "add_artifact", 201),
    ("put", "/api/v1/registered-models/m/aliases/staging/", {"version": "1"}, "change_alias", 201),
    ("put", "/api/v1/registered-models/m/aliases/production/", {"version": "1"}, "promote_alias", 201),
]


def send(client, method, url, body):
    if isinstance(body, bytes):
        return client.generic(method.upper(), url, body, content_type="application/octet-stream")
    return getattr(client, method)(url, body, format="json")


@pytest.mark.parametrize("method,url,body,permission,success", ROWS)
def test_each_write_needs_exactly_its_permission(django_user_model, bucket, method, url, body, permission, success):
    version = ModelVersion.objects.create(registered_model=RegisteredModel.objects.create(name="m"), version="1")
    url = url.format(version=version.id)
    others = ["add_registeredmodel", "change_registeredmodel", "add_modelversion", "change_modelversion"]
    without = grant(django_user_model.objects.create_user("without"), *[p for p in others if p != permission])
    client = APIClient()
    client.force_authenticate(without)
    refused = send(client, method, url, body)
    assert refused.status_code == 403, refused.content
    client.force_authenticate(grant(django_user_model.objects.create_user("with"), permission))
    response = send(client, method, url, body)
    assert response.status_code == success, response.content
