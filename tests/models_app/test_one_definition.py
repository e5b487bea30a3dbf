"""Definitions every writer and reader shares, pinned where their copies used to disagree."""

import pytest

from models_app.models import Artifact, ModelVersion, RegisteredModel, label_names


def test_the_variant_key_gets_defaults_for_missing_or_blank_parts_and_is_normalised():
    assert Artifact.variant_key({"precision": " int8 ", "target_device": "", "format": "ONNX"}) == {
        "precision": "INT8",
        "target_device": "CPU",
        "format": "onnx",
    }
    assert Artifact.variant_key({}) == {"precision": "FP32", "target_device": "CPU", "format": "openvino"}


@pytest.mark.django_db
def test_a_filter_value_and_a_stored_variant_are_normalised_alike(api_client, upload):
    upload(b"x", precision="fp16", target_device=" npu", format="OpenVINO")
    stored = Artifact.objects.get()
    assert (stored.precision, stored.target_device, stored.format) == ("FP16", "NPU", "openvino")
    response = api_client.get(
        "/api/v1/artifacts/", {"precision": "Fp16", "target_device": "npu ", "format": "OPENVINO"}
    )
    assert [a["id"] for a in response.json()["results"]] == [str(stored.pk)]


def test_label_names_keep_order_and_show_an_object_without_a_name_as_its_text():
    """The pages, the comparison and the Geti project API all name labels this way; the Geti API
    used to answer null for a label object without a name."""
    assert label_names(["car", {"name": "person", "id": "1"}, {"id": "2"}]) == ["car", "person", "{'id': '2'}"]
    assert label_names(None) == []


@pytest.mark.django_db
def test_version_totals_are_one_definition_for_the_api_the_admin_and_the_pages(api_client, upload):
    upload(b"a" * 10, version="1", precision="FP32", score=0.5)
    upload(b"b" * 30, version="1", precision="INT8", score=0.75)
    ModelVersion.objects.create(registered_model=RegisteredModel.objects.get(), version="2")
    versions = ModelVersion.objects.with_totals().with_best_score()
    totals = {v.version: (v.artifact_count, v.total_size, v.best_score) for v in versions}
    assert totals == {"1": (2, 40, 0.75), "2": (0, None, None)}
    listed = {
        v["version"]: (v["artifact_count"], v["total_size"])
        for v in api_client.get("/api/v1/versions/").json()["results"]
    }
    assert listed == {"1": (2, 40), "2": (0, None)}
    stats = RegisteredModel.objects.with_stats().get()
    assert (stats.version_count, stats.latest_version_at) == (2, ModelVersion.objects.get(version="2").created_at)
