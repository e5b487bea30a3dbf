"""What list responses are made of: links reversed once per response, orjson rendering, ETags and
304s for pollers, and one version by model name and version label."""

import json

import pytest
from rest_framework.renderers import JSONRenderer
from rest_framework.reverse import reverse

from models_app.lib.renderers import ORJSONRenderer
from models_app.models import RegisteredModel

pytestmark = pytest.mark.django_db

ODD_NAME = "a b%?#é:@!&+ c"


def test_a_registered_model_link_is_the_one_reverse_makes_even_for_an_odd_name(api_client):
    RegisteredModel.objects.create(name=ODD_NAME)
    RegisteredModel.objects.create(name="plain")

    rows = api_client.get("/api/v1/registered-models/").json()["results"]

    by_name = {row["name"]: row["url"] for row in rows}
    for name, url in by_name.items():
        request = api_client.get("/api/v1/").wsgi_request
        assert url == reverse("api:registeredmodel-detail", kwargs={"name": name}, request=request)
        followed = api_client.get(url)
        assert followed.status_code == 200 and followed.json()["name"] == name


def test_an_artifact_download_link_leads_to_its_file(api_client, artifact):
    url = api_client.get("/api/v1/artifacts/").json()["results"][0]["download_url"]

    assert url == f"http://testserver/api/v1/artifacts/{artifact.pk}/download/"
    assert b"".join(api_client.get(url).streaming_content) == b"x" * 1000


def test_orjson_writes_the_bytes_drf_wrote_for_a_list(api_client, upload):
    assert (
        upload(b"a", registered_model="détection", tags='{"team": "équipe", "n": "3"}', score="0.5").status_code == 201
    )
    response = api_client.get("/api/v1/artifacts/")
    data = response.data

    assert response["Content-Type"] == "application/json"
    assert ORJSONRenderer().render(data) == JSONRenderer().render(data)
    assert json.loads(response.content)["results"][0]["registered_model"] == "détection"


def test_an_integer_past_64_bits_in_free_json_is_written_as_it_is(api_client):
    """orjson refuses integers past 64 bits; JSON and PostgreSQL's jsonb hold them."""
    RegisteredModel.objects.create(name="big")
    body = {"registered_model": "big", "version": "1", "overview": {"frames": 2**70, "mAP": 0.5}}

    created = api_client.post("/api/v1/versions/", body, format="json")
    read = api_client.get("/api/v1/versions/?registered_model=big")

    assert created.status_code == 201, created.content
    assert json.loads(created.content)["overview"] == {"frames": 2**70, "mAP": 0.5}
    assert b'"frames":1180591620717411303424' in created.content
    assert read.status_code == 200
    assert json.loads(read.content)["results"][0]["overview"] == {"frames": 2**70, "mAP": 0.5}


def test_an_error_with_a_lazy_message_renders(anon_client):
    response = anon_client.post("/api/v1/registered-models/", {"name": "x"}, format="json")

    assert response.status_code == 401
    assert json.loads(response.content)["error"]["code"] == "not_authenticated"


def test_a_poller_gets_304_until_the_alias_moves(api_client, anon_client, upload):
    upload(b"1", version="1")
    upload(b"2", version="2")
    url = "/api/v1/registered-models/person-detection/aliases/staging/"
    assert api_client.put(url, {"version": "1"}, format="json").status_code == 201

    first = anon_client.get(url)
    etag = first["ETag"]
    again = anon_client.get(url, HTTP_IF_NONE_MATCH=etag)
    assert api_client.put(url, {"version": "2"}, format="json").status_code == 200
    moved = anon_client.get(url, HTTP_IF_NONE_MATCH=etag)

    assert first.status_code == 200 and etag
    assert again.status_code == 304 and again.content == b""
    assert moved.status_code == 200 and moved["ETag"] != etag and moved.json()["version"] == "2"


def test_a_download_keeps_its_sha256_etag(api_client, artifact):
    response = api_client.get(f"/api/v1/artifacts/{artifact.pk}/download/")

    assert response.status_code == 200
    assert response["ETag"] == f'"{artifact.sha256}"'


def test_one_version_by_model_name_and_version_label(api_client, anon_client, upload):
    upload(b"1", registered_model=ODD_NAME, version="1.0")
    version_id = api_client.get("/api/v1/versions/").json()["results"][0]["id"]
    path = reverse("api:registeredmodel-version", kwargs={"name": ODD_NAME, "version": "1.0"})

    by_name = anon_client.get(path)
    by_id = anon_client.get(f"/api/v1/versions/{version_id}/")
    missing = anon_client.get(reverse("api:registeredmodel-version", kwargs={"name": ODD_NAME, "version": "9"}))

    assert by_name.status_code == 200 and by_name.json() == by_id.json()
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_one_version_by_name_follows_the_read_rule(anon_client, upload, settings):
    upload(b"1", version="1")
    settings.REGISTRY_REQUIRE_LOGIN = True

    response = anon_client.get("/api/v1/registered-models/person-detection/versions/1/")

    assert response.status_code == 401 and response.json()["error"]["code"] == "not_authenticated"
