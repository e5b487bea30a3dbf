"""The registry's ModelSerializer reads a model's own columns straight off the instance: what it
writes is what DRF's generic lookup writes, field for field and in the same order."""

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.test import APIRequestFactory

from models_app.api import serializers as api
from models_app.models import Artifact, ArtifactInspection, AuditEntry, ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(model_version, user):
    artifact = Artifact.objects.create(
        version=model_version,
        precision="INT8",
        target_device="NPU",
        format="onnx",
        score=None,
        size=3,
        sha256="a" * 64,
        file="artifacts/a/model.onnx",
        created_by=user,
        optimization_capabilities={"int8": True},
    )
    ArtifactInspection.objects.create(
        artifact=artifact,
        status="done",
        format="openvino",
        weight_precision="FP16",
        inspected_at=timezone.now(),
        signature={"inputs": [{"name": "x", "shape": [1, None], "element_type": "f32"}]},
        details={"op_counts": {"Conv": 2}},
    )
    model_version.aliases.create(name="production", registered_model=model_version.registered_model)
    return {
        api.RegisteredModelSerializer: RegisteredModel.objects.with_stats().get(),
        api.ModelVersionSerializer: ModelVersion.objects.select_related("registered_model").with_totals().get(),
        api.ArtifactSerializer: Artifact.objects.with_version().get(),
        api.ArtifactInspectionDetailSerializer: ArtifactInspection.objects.get(),
        api.ArtifactInspectionSerializer: ArtifactInspection.objects.defer("details").get(),
        api.AliasSerializer: model_version.aliases.get(),
        api.AuditEntrySerializer: AuditEntry(action="create", object_type="x", object_id="1", changes={"a": [1, 2]}),
    }


@pytest.mark.parametrize(
    "cls",
    [
        api.RegisteredModelSerializer,
        api.ModelVersionSerializer,
        api.ArtifactSerializer,
        api.ArtifactInspectionDetailSerializer,
        api.ArtifactInspectionSerializer,
        api.AliasSerializer,
        api.AuditEntrySerializer,
    ],
)
def test_direct_reads_write_what_drf_writes(objects, cls):
    request = APIRequestFactory().get("/")
    serializer = cls(context={"request": request, "artifact": objects[api.ArtifactSerializer]})
    instance = objects[cls]
    ours = serializer.to_representation(instance)
    theirs = serializers.ModelSerializer.to_representation(serializer, instance)
    assert ours == theirs and list(ours) == list(theirs)
    assert any(column for _, column in serializer._reads)  # some fields were read directly


@pytest.mark.parametrize("cls", [api.RegisteredModelSerializer, api.ModelVersionSerializer, api.ArtifactSerializer])
def test_each_serializer_has_fields_of_its_own(cls):
    """Fields are copies of prototypes made once per class (``fresh_field``): binding one to its
    serializer, or changing it, leaves the other serializers' fields and the prototypes alone."""
    first, second = cls(), cls(data={})
    second.is_valid()
    for name, field in first.fields.items():
        other = second.fields[name]
        assert field is not other and field.parent is first and other.parent is second
        assert field.field_name == other.field_name == name
        assert getattr(cls._field_prototypes[name], "parent", None) is None
    assert list(first.fields) == list(cls._field_prototypes)
    first.fields[next(iter(first.fields))].label = "changed"
    assert cls().fields[next(iter(first.fields))].label != "changed"


def test_a_refused_create_leaves_the_next_one_its_own_errors(api_client, model_version):
    """Validation runs on each request's own fields: one request's errors never reach the next."""
    refused = api_client.post("/api/v1/versions/", {"registered_model": "nope", "version": "1"}, format="json")
    created = api_client.post(
        "/api/v1/versions/", {"registered_model": model_version.registered_model.name, "version": "9"}, format="json"
    )
    assert refused.status_code == 400 and "registered_model" in refused.json()["error"]["fields"]
    assert created.status_code == 201, created.content
