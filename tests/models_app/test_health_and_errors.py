import pytest
from django.db import connection

from tests.conftest import free_port, s3_storages

pytestmark = pytest.mark.django_db


def test_healthz_answers_without_checking_dependencies(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_storage(client, bucket):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "storage": "ok"}


def test_readyz_is_503_with_the_reason_when_storage_is_down(client, settings):
    endpoint = f"http://127.0.0.1:{free_port()}"
    settings.STORAGES = s3_storages(endpoint, "gone")
    response = client.get("/readyz")
    assert response.status_code == 503 and response["Retry-After"] == "30"
    body = response.json()
    # The storage's internal address is for the log, not for whoever asks.
    assert "127.0.0.1" not in response.content.decode()
    assert body["error"]["code"] == "not_ready"
    assert "storage" in body["error"]["message"]
    assert body["checks"] == {"database": "ok", "storage": "unavailable"}


def test_readyz_is_503_when_the_bucket_does_not_exist(client, settings, s3_endpoint):
    settings.STORAGES = s3_storages(s3_endpoint, "no-such-bucket-here")
    assert client.get("/readyz").status_code == 503


def test_api_errors_share_one_shape(api_client):
    for response, status, code in [
        (api_client.get("/api/v1/registered-models/missing/"), 404, "not_found"),
        (api_client.put("/api/v1/artifacts/00000000-0000-0000-0000-000000000000/download/"), 405, "method_not_allowed"),
        (
            api_client.post("/api/v1/registered-models/", "{bad json", content_type="application/json"),
            400,
            "parse_error",
        ),
    ]:
        assert response.status_code == status
        assert response.json()["error"]["code"] == code
        assert response.json()["error"]["message"]


def test_an_unknown_api_path_is_a_json_404(client, settings):
    settings.DEBUG = False
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_a_database_outage_is_a_503(api_client, monkeypatch):
    """The connection is really closed and pointed at a port where nothing listens."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite is a file: it has no outage to simulate")  # CI runs this on PostgreSQL
    connection.close()
    monkeypatch.setitem(connection.settings_dict, "PORT", str(free_port()))
    monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
    try:
        response = api_client.get("/api/v1/registered-models/")
    finally:
        connection.close()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"


def test_the_openapi_schema_and_docs_pages_are_served(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/artifacts/" in paths and "/api/v1/artifacts/{id}/download/" in paths
    assert "multipart/form-data" in paths["/api/v1/artifacts/"]["post"]["requestBody"]["content"]
    # Requests build only the filters they name; the schema still documents every one.
    parameters = {p["name"] for p in paths["/api/v1/artifacts/"]["get"]["parameters"]}
    assert {"precision", "format", "score_min", "tag", "provenance", "include_archived", "search"} <= parameters
    assert client.get("/api/docs/").status_code == 200
    assert client.get("/api/redoc/").status_code == 200
