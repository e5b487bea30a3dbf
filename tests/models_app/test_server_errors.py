"""Requests that used to end in a 500: each is now a 4xx or an answer."""

import pytest

from models_app.models import Alias, RegisteredModel
from tests.conftest import grant

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("body", [[None, None], ["staging"], "staging", 3])
def test_an_alias_body_that_is_not_an_object_is_a_400(api_client, body):
    RegisteredModel.objects.create(name="m")
    response = api_client.post("/api/v1/registered-models/m/aliases/", body, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "validation_error"
    assert not Alias.objects.exists()


def test_options_on_the_raw_upload_url_describes_it(api_client, user):
    grant(user, "change_artifact", "add_artifact")
    response = api_client.options("/api/v1/artifacts/upload/x.bin")
    assert response.status_code == 200, response.content
    assert "PUT" in response["Allow"] and "POST" in response["Allow"]
