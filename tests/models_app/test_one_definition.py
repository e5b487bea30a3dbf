"""Definitions every writer and reader shares, pinned where their copies used to disagree."""

import pytest

from models_app.models import Artifact, label_names


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
