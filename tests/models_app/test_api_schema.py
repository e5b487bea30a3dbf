"""The OpenAPI schema documents what the API really answers."""

import pytest
import yaml

pytestmark = pytest.mark.django_db


def test_a_new_registered_model_s_201_has_every_field_the_schema_requires(api_client):
    response = api_client.post("/api/v1/registered-models/", {"name": "m"}, format="json")
    assert response.status_code == 201
    schema = yaml.safe_load(api_client.get("/api/schema/").content)
    required = schema["components"]["schemas"]["RegisteredModel"]["required"]
    assert set(required) <= set(response.json()) and response.json()["version_count"] == 0


def test_every_operation_documents_its_errors_in_the_one_shape(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for code in ("400", "401", "403", "404", "429", "503"):
                assert operation["responses"][code]["content"] == error, (method, path, code)
            if method in ("post", "put", "patch", "delete"):
                assert {"409", "422"} <= set(operation["responses"]), (method, path)
