"""Input no database can hold is a 400 that says what is wrong, on every face; Django's own
refusals answer JSON on API paths. 503 is for real outages only."""

import pytest

from models_app.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/registered-models/a%00b/",
        "/api/v1/artifacts/?search=%00",
        "/api/v1/registered-models/?name=%00",
        "/api/v1/versions/?a%00b=1",
        "/models?name=%00",
        "/models/a%00b",
    ],
)
def test_a_nul_in_an_api_url_is_a_json_400(client, url):
    response = client.get(url)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "bad_request"
    assert "NUL" in response.json()["error"]["message"]


@pytest.mark.parametrize("url", ["/?q=%00", "/m/a%00b/", "/admin/models_app/registeredmodel/?q=%00"])
def test_a_nul_in_a_page_url_is_a_400_page(admin_client, url):
    response = admin_client.get(url)
    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


def test_a_nul_in_a_url_encoded_form_is_a_400(admin_client):
    response = admin_client.post(
        "/admin/models_app/registeredmodel/add/", "name=a%00b", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400 and "NUL character" in response.content.decode()
    assert not RegisteredModel.objects.exists()


def test_a_nul_in_a_multipart_form_is_the_form_s_error(admin_client):
    response = admin_client.post("/admin/models_app/registeredmodel/add/", {"name": "a\x00b"})
    assert response.status_code == 200 and "Null characters are not allowed." in response.content.decode()
    assert not RegisteredModel.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"registered_model": "a\x00b", "version": "1"},
        {"registered_model": "m", "version": "1\x00"},
        {"registered_model": "m", "version": "1", "tags": {"team": "a\x00b"}},
        {"registered_model": "m", "version": "1", "overview": {"a\x00b": 1}},
        {"registered_model": "m", "version": "1", "labels": ["a\x00b"]},
    ],
)
def test_a_nul_in_a_json_body_is_a_400_that_names_the_field(api_client, body):
    RegisteredModel.objects.create(name="m")
    response = api_client.post("/api/v1/versions/", body, format="json")
    assert response.status_code == 400, response.content
    field = next(key for key, value in body.items() if r"\x00" in repr(value))
    assert field in response.json()["error"]["fields"]
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize("offset", ["+21:09", "-23:59", "+15:59", "Z"])
def test_a_time_zone_offset_postgresql_cannot_store_still_filters(client, offset):
    RegisteredModel.objects.create(name="m")
    response = client.get("/api/v1/registered-models/", {"created_before": f"2999-01-01T00:00:00{offset}"})
    assert response.status_code == 200, response.content
    assert [m["name"] for m in response.json()["results"]] == ["m"]
    response = client.get("/api/v1/registered-models/", {"created_after": f"2999-01-01T00:00:00{offset}"})
    assert response.status_code == 200 and response.json()["results"] == []


def test_a_host_not_allowed_is_a_json_400_on_the_api(client):
    response = client.get("/api/v1/registered-models/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "bad_request",
        "message": "The Host header names a host this registry does not serve.",
    }


def test_a_host_not_allowed_is_a_400_page_elsewhere(client):
    response = client.get("/", HTTP_HOST="evil.example")
    assert response.status_code == 400 and "does not serve" in response.content.decode()


def test_too_many_form_fields_is_a_json_400_on_intel_routes(client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 10
    response = client.post(
        "/models", "&".join(f"f{i}=1" for i in range(20)), content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "The request has too many form fields or files."


def test_too_big_a_form_is_a_json_400_on_the_api(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = client.post(
        "/api/v1/registered-models/", "name=" + "x" * 200, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_a_description_past_the_cap_is_a_400(api_client):
    response = api_client.post("/api/v1/registered-models/", {"name": "m", "description": "x" * 50_001}, format="json")
    assert response.status_code == 400
    assert "description" in response.json()["error"]["fields"]
    assert not RegisteredModel.objects.exists()


def test_too_many_labels_is_a_400(api_client):
    RegisteredModel.objects.create(name="m")
    response = api_client.post(
        "/api/v1/versions/", {"registered_model": "m", "version": "1", "labels": ["a"] * 1001}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["labels"] == ["At most 1000 labels."]


def test_a_chunked_body_is_refused_with_411_before_anything_is_stored(api_client, bucket):
    response = api_client.generic(
        "PUT",
        "/api/v1/artifacts/upload/m.bin?registered_model=m&version=1",
        b"",
        content_type="application/octet-stream",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_LENGTH="",  # as gunicorn passes a chunked request: no length
    )
    assert response.status_code == 411
    assert response.json()["error"]["code"] == "length_required"
    assert not RegisteredModel.objects.exists() and list(bucket.objects.all()) == []
